import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex, Writable } from 'node:stream';
import type { AppError } from '@pa/kit';

/**
 * RFC 9457 problem documents, the HTTP data path's error format: the same
 * members as the REST API and the tunnel handshake (`type`, `title`, `status`,
 * `detail`, `code`), so a client sees one format whichever edge refused it.
 */
const TYPE_BASE = 'https://port-authorizing.dev/errors/';

/** Seconds a client should wait before retrying, when the error says so. */
const retryAfterSeconds = (err: AppError): number | undefined => {
  const s = err.meta.retryAfterSeconds;
  if (typeof s === 'number' && Number.isFinite(s)) return Math.max(1, Math.ceil(s));
  return err.spec.retryable && err.spec.http === 503 ? 1 : undefined;
};

/** The problem document of an AppError, as JSON text. */
export const problemJson = (err: AppError): string => {
  const retry = retryAfterSeconds(err);
  return JSON.stringify({
    type: TYPE_BASE + err.code.toLowerCase().replace(/_/g, '-'),
    title: err.spec.message,
    status: err.spec.http,
    detail: err.message,
    code: err.code,
    ...(retry !== undefined ? { retryAfterSeconds: retry } : {}),
  });
};

/**
 * Answers one request with a problem document through Node's response object
 * (so pipelined responses stay in order). `close` adds `Connection: close`:
 * Node then ends the connection once this response is written.
 */
export const sendProblem = (res: ServerResponse, err: AppError, close: boolean): void => {
  const body = problemJson(err);
  const headers = ['Content-Type', 'application/problem+json', 'Content-Length', String(Buffer.byteLength(body)), 'Cache-Control', 'no-store'];
  const retry = retryAfterSeconds(err);
  if (retry !== undefined) headers.push('Retry-After', String(retry));
  if (close) headers.push('Connection', 'close');
  res.writeHead(err.spec.http, headers);
  res.end(body);
};

/** A complete response with a problem document, as bytes for a socket no HTTP server owns. */
export const rawProblemResponse = (err: AppError, close: boolean): string => {
  const body = problemJson(err);
  const status = err.spec.http;
  const retry = retryAfterSeconds(err);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    `Content-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n` +
    (retry !== undefined ? `Retry-After: ${retry}\r\n` : '') +
    (close ? 'Connection: close\r\n' : '') +
    `\r\n${body}`
  );
};

/** How long a closing socket may take to flush its last response before it is destroyed. */
const CLOSE_FLUSH_MS = 5_000;

/**
 * Ends a socket once what was written to it is flushed, and destroys it then
 * (or after a bound, for a peer that never reads).
 */
export const closeAfterFlush = (socket: Duplex | Writable, last?: string): void => {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const timer = setTimeout(() => socket.destroy(), CLOSE_FLUSH_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  const destroy = (): void => {
    socket.destroy();
  };
  if (last === undefined) socket.end(destroy);
  else socket.end(last, destroy);
};
