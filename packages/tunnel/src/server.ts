import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError, toAppError } from '@pa/kit';
import { CLIENT_LABEL_HEADER, MAX_GRANT_BYTES, TUNNEL_ID_HEADER, TUNNEL_PATH, TUNNEL_PROTOCOL } from './protocol';

export interface TunnelRequest {
  /** The grant (compact JWS) the client presented. */
  grant: string;
  /** Client label, sanitised, for logs. */
  clientLabel: string | null;
}

/**
 * Reads a tunnel request from an HTTP Upgrade request. Anything other than
 * `GET /v1/tunnel` with `Upgrade: pa-tunnel/1` and a bearer grant is refused
 * with a precise code.
 */
export const parseTunnelRequest = (req: IncomingMessage): TunnelRequest => {
  const path = (req.url ?? '').split('?')[0];
  if (path !== TUNNEL_PATH) throw new AppError('ROUTE_NOT_FOUND', { message: `Tunnels are opened at ${TUNNEL_PATH}.` });
  if (req.method !== 'GET') throw new AppError('METHOD_NOT_ALLOWED', { message: 'Tunnels are opened with GET.' });
  const upgrade = (req.headers.upgrade ?? '').toLowerCase();
  if (upgrade !== TUNNEL_PROTOCOL) {
    throw new AppError('VALIDATION_FAILED', { message: `Expected "Upgrade: ${TUNNEL_PROTOCOL}".` });
  }
  const grant = bearerGrant(req);
  const rawLabel = req.headers[CLIENT_LABEL_HEADER];
  const label = typeof rawLabel === 'string' ? rawLabel.replace(/[^A-Za-z0-9._:-]/g, '').slice(0, 64) : '';
  return { grant, clientLabel: label || null };
};

/** The grant of an `Authorization: Bearer <grant>` header; AUTH_REQUIRED / PAYLOAD_TOO_LARGE otherwise. */
export const bearerGrant = (req: IncomingMessage): string => {
  const auth = req.headers.authorization ?? '';
  const m = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/.exec(auth);
  if (!m) throw new AppError('AUTH_REQUIRED', { message: 'Present the grant as "Authorization: Bearer <grant>".' });
  const grant = m[1] as string;
  if (grant.length > MAX_GRANT_BYTES) throw new AppError('PAYLOAD_TOO_LARGE', { message: 'The grant is too large.' });
  return grant;
};

/** Completes the handshake: after this the socket carries the grant's protocol. */
export const acceptTunnel = (socket: Duplex, tunnelId: string): void => {
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${TUNNEL_PROTOCOL}\r\nConnection: Upgrade\r\n${TUNNEL_ID_HEADER}: ${tunnelId}\r\n\r\n`,
  );
};

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** An error as the node's HTTP answer: status, problem document, and the Retry-After seconds when there are some. */
export const tunnelProblem = (err: unknown): { status: number; statusText: string; body: string; retryAfterSeconds: number | null } => {
  const e = toAppError(err);
  const status = e.spec.http;
  const retryAfterSeconds = typeof e.meta.retryAfterSeconds === 'number' ? e.meta.retryAfterSeconds : null;
  const body = JSON.stringify({
    type: `https://port-authorizing.dev/errors/${e.code.toLowerCase().replace(/_/g, '-')}`,
    title: e.spec.message,
    status,
    detail: e.message,
    code: e.code,
    ...(retryAfterSeconds !== null ? { retryAfterSeconds } : {}),
  });
  return { status, statusText: STATUS_TEXT[status] ?? 'Error', body, retryAfterSeconds };
};

/**
 * Refuses a tunnel with an HTTP status and a problem document, then closes.
 * Non-AppErrors are reported as INTERNAL (their text never reaches the client).
 */
export const rejectTunnel = (socket: Duplex, err: unknown): void => {
  const p = tunnelProblem(err);
  const retry = p.retryAfterSeconds !== null ? `Retry-After: ${Math.max(1, Math.ceil(p.retryAfterSeconds))}\r\n` : '';
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`HTTP/1.1 ${p.status} ${p.statusText}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(p.body)}\r\n${retry}Connection: close\r\n\r\n${p.body}`);
};
