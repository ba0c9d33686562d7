import type { ProtocolHandler, ProtocolName } from './handler';
import { tcpHandler } from './tcp/tcp-handler';

/** The single explicit list of protocol handlers (no registration by import side effects). */
export const PROTOCOL_HANDLERS: Readonly<Partial<Record<ProtocolName, ProtocolHandler>>> = Object.freeze({
  tcp: tcpHandler,
});
