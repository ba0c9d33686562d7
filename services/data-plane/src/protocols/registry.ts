import type { ProtocolHandler, ProtocolName } from './handler';
import { postgresHandler } from './postgres/postgres-handler';
import { httpHandler } from './http/http-handler';
import { tcpHandler } from './tcp/tcp-handler';

/** The single explicit list of protocol handlers (no registration by import side effects). */
export const PROTOCOL_HANDLERS: Readonly<Partial<Record<ProtocolName, ProtocolHandler>>> = Object.freeze({
  postgres: postgresHandler,
  tcp: tcpHandler,
  http: httpHandler,
});
