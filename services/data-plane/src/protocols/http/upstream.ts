import { isIP } from 'node:net';
import { Pool } from 'undici';
import { AppError } from '@pa/kit';
import type { GrantConnection } from '@pa/grants';
import { ChunkedClient } from './chunked-client';

/** Tuning of the connections from a node to HTTP backends. */
export interface UpstreamOptions {
  /** Most connections a node keeps to one backend (requests beyond wait in the pool's queue). */
  readonly maxConnections: number;
  /** Close a backend connection idle this long (shortened by the backend's own `Keep-Alive: timeout`). */
  readonly keepAliveTimeoutMs: number;
  /** The backend must send a response head this soon after the request was written (else 504). */
  readonly headersTimeoutMs: number;
  /** Longest silence between two body chunks of a response (else the response is cut). */
  readonly bodyTimeoutMs: number;
  /** Largest response head accepted from a backend. */
  readonly maxHeaderBytes: number;
  /** Extra trust anchors (PEM) for `verify-ca` / `verify-full`, besides the system's. */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>;
}

/** One backend as the handler uses it: a keep-alive pool and the Host header it expects. */
export interface Upstream {
  readonly pool: Pool;
  /** Requests with a chunked body (Node's client: it can send request trailers, undici cannot). */
  readonly chunked: ChunkedClient;
  /** `Host` for the backend: `host` plus `:port` unless the scheme's default. */
  readonly host: string;
  readonly name: string;
}

const bracket = (host: string): string => (isIP(host) === 6 ? `[${host}]` : host);

/**
 * Keep-alive pools shared by every session of a node, one per backend address
 * and TLS mode: a tunnel's requests reuse warm connections opened for earlier
 * tunnels, and nothing is dialled until the first allowed request. A pool
 * carries no user state (the credential is per request), and HTTP/1.1 answers
 * each request on the connection that sent it, so sharing cannot mix users'
 * responses.
 */
export class UpstreamPools {
  private readonly pools = new Map<string, Upstream>();

  constructor(private readonly options: UpstreamOptions) {}

  /** The pool for a grant's connection, created on first use (no dial yet). */
  get(connection: GrantConnection, connectTimeoutMs: number): Upstream {
    const { host, port, tlsMode } = connection;
    const key = `${tlsMode}|${host}|${port}|${connectTimeoutMs}`;
    const existing = this.pools.get(key);
    if (existing !== undefined) return existing;
    const useTls = tlsMode !== 'disable';
    const origin = `${useTls ? 'https' : 'http'}://${bracket(host)}:${port}`;
    const o = this.options;
    const pool = new Pool(origin, {
      connections: o.maxConnections,
      pipelining: 1,
      keepAliveTimeout: o.keepAliveTimeoutMs,
      headersTimeout: o.headersTimeoutMs,
      bodyTimeout: o.bodyTimeoutMs,
      maxHeaderSize: o.maxHeaderBytes,
      strictContentLength: true,
      connect: {
        timeout: connectTimeoutMs,
        ...(useTls
          ? {
              // require: encrypt, trust anything; verify-ca: chain only; verify-full: chain and name.
              rejectUnauthorized: tlsMode !== 'require',
              ...(isIP(host) === 0 ? { servername: host } : {}),
              ...(tlsMode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
              ...(o.ca !== undefined ? { ca: o.ca as string | Buffer | Array<string | Buffer> } : {}),
            }
          : {}),
      },
    });
    const chunked = new ChunkedClient({
      host,
      port,
      tls: useTls
        ? {
            rejectUnauthorized: tlsMode !== 'require',
            ...(isIP(host) === 0 ? { servername: host } : {}),
            ...(tlsMode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
            ...(o.ca !== undefined ? { ca: o.ca as string | Buffer | Array<string | Buffer> } : {}),
          }
        : false,
      maxConnections: o.maxConnections,
      keepAliveTimeoutMs: o.keepAliveTimeoutMs,
      connectTimeoutMs,
      headersTimeoutMs: o.headersTimeoutMs,
      bodyTimeoutMs: o.bodyTimeoutMs,
      maxHeaderBytes: o.maxHeaderBytes,
    });
    const defaultPort = useTls ? 443 : 80;
    const upstream: Upstream = { pool, chunked, host: port === defaultPort ? bracket(host) : `${bracket(host)}:${port}`, name: connection.name };
    this.pools.set(key, upstream);
    return upstream;
  }

  /** Closes every pool (in-flight requests finish first). */
  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    for (const u of all) u.chunked.close();
    await Promise.all(all.map((u) => u.pool.close().catch(() => undefined)));
  }
}

const TIMEOUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'EADDRNOTAVAIL']);

const isTlsFailure = (code: string): boolean =>
  code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.includes('CERT') || code.startsWith('UNABLE_TO_') || code.includes('SELF_SIGNED') || code === 'EPROTO';

/**
 * Maps a failure talking to the backend to the client-facing error, once, at
 * the edge: timeouts → 504, unreachable or TLS failure → 502, a connection lost
 * before the response was complete → 502 (not retryable: the backend may have
 * acted on it). AppErrors (an abort with its reason) pass through.
 */
export const upstreamError = (err: unknown, name: string): AppError => {
  if (err instanceof AppError) return err;
  const code = typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : '';
  if (TIMEOUT_CODES.has(code)) return new AppError('HTTP_BACKEND_TIMEOUT', { message: `The backend ${name} did not answer in time.`, cause: err });
  if (UNREACHABLE_CODES.has(code)) return new AppError('HTTP_BACKEND_UNAVAILABLE', { message: `The backend ${name} is unreachable.`, cause: err });
  if (isTlsFailure(code)) return new AppError('HTTP_BACKEND_UNAVAILABLE', { message: `A secure connection to the backend ${name} could not be established.`, cause: err });
  return new AppError('HTTP_BACKEND_CONNECTION_LOST', { message: `The connection to the backend ${name} was lost before the response was complete.`, cause: err });
};
