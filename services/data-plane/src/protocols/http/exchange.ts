import { STATUS_CODES, validateHeaderName, validateHeaderValue, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable, type Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { AppError } from '@pa/kit';
import { ChunkedClient, type TrailingBody } from './chunked-client';
import { filterResponseHeaders, filterResponseTrailers } from './headers';
import { closeAfterFlush, rawProblemResponse, sendProblem } from './problem';
import { upstreamError } from './upstream';

/** How a forwarded request ended, for its `http.response` audit event. */
export interface ExchangeResult {
  readonly outcome: 'success' | 'failure' | 'error';
  readonly status: number;
  /** Request body bytes sent on (client → backend). */
  readonly bytesIn: number;
  /** Response body bytes passed back (backend → client). */
  readonly bytesOut: number;
  /** Why it failed, when it did: an error code or `CLIENT_CLOSED`. */
  readonly errorCode?: string;
}

/** What an exchange needs from its session. */
export interface ExchangeOwner {
  /** The session is closing: answers carry `Connection: close`. */
  isClosing(): boolean;
  exchangeDone(result: ExchangeResult): void;
}

/** One request as it is forwarded: what was judged, and where its audit events point. */
export interface ForwardSpec {
  readonly seq: number;
  readonly method: string;
  /** The normalised target: exactly what the policy judged. */
  readonly target: string;
  readonly headers: string[];
  readonly hasBody: boolean;
  /** Backend name, for error messages. */
  readonly backend: string;
}

/**
 * The request body on its way to the backend. undici destroys the stream it
 * is given when the backend fails; handing it Node's IncomingMessage would
 * then destroy the tunnel before the 502 could be written. This thin relay
 * keeps `pause`/`resume` backpressure on the client stream, counts bytes, and
 * on destruction stops reading without destroying the client.
 */
class RequestBody extends Readable implements TrailingBody {
  bytes = 0;
  /** The client's trailers as they go to the backend (set when the body ends; only for chunked bodies). */
  trailers: readonly string[] = [];

  constructor(
    private readonly src: IncomingMessage,
    private readonly trailerFilter: ((raw: readonly string[]) => string[]) | null,
  ) {
    super({ highWaterMark: 64 * 1024 });
    src.on('data', this.onData);
    src.on('end', this.onEnd);
    src.on('error', this.onError);
    src.on('close', this.onClose);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.bytes += chunk.length;
    if (!this.push(chunk)) this.src.pause();
  };

  private readonly onEnd = (): void => {
    if (this.trailerFilter !== null && this.src.rawTrailers.length > 0) this.trailers = this.trailerFilter(this.src.rawTrailers);
    this.push(null);
  };

  private readonly onError = (err: Error): void => {
    this.destroy(err);
  };

  private readonly onClose = (): void => {
    if (!this.src.complete) this.destroy(new Error('The client closed before the request body was complete.'));
  };

  override _read(): void {
    this.src.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.src.off('data', this.onData);
    this.src.off('end', this.onEnd);
    this.src.off('error', this.onError);
    this.src.off('close', this.onClose);
    // The backend stopped taking the body (it answered early, or failed): discard the rest so the
    // client's next request can be parsed (what Node does itself for a body nobody reads).
    if (!this.src.complete) this.src.resume();
    callback(err);
  }
}

/** Node's internal raw writer, which `writeContinue` and `writeEarlyHints` use (it queues behind an earlier response still being written). */
interface RawWriter {
  _writeRaw?: (data: string, encoding: BufferEncoding) => boolean;
}

/**
 * One request forwarded through an undici pool, as a dispatch handler: the
 * response head is filtered and written with Node's response object, body
 * chunks are written as they come and undici's parser is paused whenever the
 * client's socket is full (resumed on `drain`), so memory per request stays at
 * a socket buffer whatever the body size. Failures before the response head
 * become a problem document (502/504); after it, the client connection is cut
 * (the status line is gone, so that is the only honest signal left).
 *
 * undici's classic handler callbacks are used (they are its core interface in
 * v7, marked deprecated in its types for v8): they hand over the raw header
 * list, where the newer controller API first builds a header object per
 * response that would only be filtered again.
 */
export class Exchange implements Dispatcher.DispatchHandler {
  private status = 0;
  private bytesOut = 0;
  private settled = false;
  private readonly body: RequestBody | null;
  private abortUpstream: ((err?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  /** The final response head from the backend (its Connection header names more hop-by-hop trailer fields). */
  private responseHead: readonly Buffer[] | null = null;

  /** `trailerFilter`: how the client's request trailers reach the backend (only a chunked body has them). */
  constructor(
    private readonly owner: ExchangeOwner,
    private readonly spec: ForwardSpec,
    private readonly req: IncomingMessage,
    readonly res: ServerResponse,
    trailerFilter: ((raw: readonly string[]) => string[]) | null = null,
  ) {
    this.body = spec.hasBody ? new RequestBody(req, trailerFilter) : null;
  }

  /**
   * Sends the request (the pool dials lazily, or reuses a kept-alive connection).
   * A chunked request body goes through `ChunkedClient`, which can send its trailers.
   */
  start(via: Dispatcher | ChunkedClient): void {
    this.res.on('close', this.onResClose);
    const s = this.spec;
    if (via instanceof ChunkedClient) via.dispatch({ path: s.target, method: s.method, headers: s.headers, body: this.body }, this);
    else via.dispatch({ path: s.target, method: s.method, headers: s.headers, body: this.body }, this);
  }

  /** Ends the exchange with `err` (session revoked): answered in-band when nothing was sent yet, else cut. */
  cancel(err: AppError): void {
    if (this.settled) return;
    if (!this.res.headersSent) {
      this.status = err.spec.http;
      sendProblem(this.res, err, true);
    } else {
      this.res.destroy();
    }
    this.settle('error', err.code);
    this.abortUpstream?.(err);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.settled) abort(new Error('The exchange already ended.'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) {
      this.relayInformational(statusCode, rawHeaders);
      return true;
    }
    this.status = statusCode;
    this.resumeUpstream = resume;
    this.responseHead = rawHeaders;
    const headers = filterResponseHeaders(rawHeaders);
    if (this.owner.isClosing()) headers.push('Connection', 'close');
    try {
      this.res.writeHead(statusCode, headers);
    } catch (err) {
      // A head Node will not send (undici's parser is more lenient about values): a bad gateway.
      this.onError(new AppError('HTTP_BACKEND_UNAVAILABLE', { message: `The backend ${this.spec.backend} sent a response head that cannot be passed on.`, cause: err }));
      this.abortUpstream?.(new Error('The backend response head was refused.'));
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytesOut += chunk.length;
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.onDrain);
    return false;
  }

  /** `trailers`: the backend's raw trailer fields (undici and ChunkedClient give Buffers). */
  onComplete(trailers?: readonly (Buffer | string)[] | null): void {
    if (this.settled) return;
    if (trailers != null && trailers.length > 0) this.relayTrailers(trailers);
    this.res.end();
    this.settle(this.status >= 400 ? 'failure' : 'success');
  }

  /**
   * Passes a backend's interim response (103 Early Hints, 102…) on before the
   * final one, its headers filtered as a final head's are. Not passed on: 100
   * (the proxy answers `Expect` itself and never forwards it, so a 100 from the
   * backend answers nothing the client asked), 101 (only an upgrade switches
   * protocols), and anything to an HTTP/1.0 client, which must not get a 1xx
   * (RFC 9110 §15.2).
   */
  private relayInformational(statusCode: number, rawHeaders: Buffer[]): void {
    if (statusCode === 100 || statusCode === 101 || this.res.headersSent || this.settled) return;
    if (this.req.httpVersionMajor !== 1 || this.req.httpVersionMinor < 1) return;
    const writer = this.res as unknown as RawWriter;
    if (typeof writer._writeRaw !== 'function') return;
    const headers = filterResponseHeaders(rawHeaders);
    let head = `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? 'Informational'}\r\n`;
    try {
      for (let i = 0; i < headers.length; i += 2) {
        validateHeaderName(headers[i] as string);
        validateHeaderValue(headers[i] as string, headers[i + 1] as string);
        head += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`;
      }
    } catch {
      return; // a field Node would not write: drop this interim response (the final one still comes)
    }
    writer._writeRaw.call(this.res, `${head}\r\n`, 'latin1');
  }

  /**
   * Passes the backend's trailers on (Node writes them after the last chunk;
   * for a response it does not chunk — an HTTP/1.0 client — they are dropped).
   */
  private relayTrailers(trailers: readonly (Buffer | string)[]): void {
    let connection: string | undefined;
    const head = this.responseHead ?? [];
    for (let i = 0; i < head.length; i += 2) {
      if ((head[i] as Buffer).toString('latin1').toLowerCase() === 'connection') connection = (head[i + 1] as Buffer).toString('latin1');
    }
    const pairs = filterResponseTrailers(trailers, connection);
    if (pairs.length === 0) return;
    try {
      this.res.addTrailers(pairs);
    } catch {
      // A field Node will not write (undici's parser is more lenient about values): the response ends without trailers.
    }
  }

  onError(err: Error): void {
    if (this.settled) return;
    const e = upstreamError(err, this.spec.backend);
    if (!this.res.headersSent) {
      this.status = e.spec.http;
      // A request body the backend did not take leaves the client stream mid-message: close after answering.
      sendProblem(this.res, e, !this.req.complete || this.owner.isClosing());
    } else {
      this.res.destroy();
    }
    this.settle('error', e.code);
  }

  private readonly onDrain = (): void => {
    this.resumeUpstream?.();
  };

  /** The response closed before it was finished: the client went away. */
  private readonly onResClose = (): void => {
    if (this.settled || this.res.writableFinished) return;
    this.settle('error', 'CLIENT_CLOSED');
    this.abortUpstream?.(new Error('The client closed the connection.'));
  };

  private settle(outcome: ExchangeResult['outcome'], errorCode?: string): void {
    this.settled = true;
    this.res.off('close', this.onResClose);
    this.owner.exchangeDone({
      outcome,
      status: this.status,
      bytesIn: this.body?.bytes ?? 0,
      bytesOut: this.bytesOut,
      ...(errorCode !== undefined ? { errorCode } : {}),
    });
  }
}

/** What an upgrade exchange needs from its session. */
export interface UpgradeOwner extends ExchangeOwner {
  /** The backend switched protocols: relay raw bytes from now on. */
  startRelay(upstream: Duplex, responseHead: string): void;
}

/**
 * A WebSocket upgrade forwarded to the backend. On `101` the backend socket is
 * handed to the session, which relays both ways. Any other answer is passed on
 * with `Connection: close` and the tunnel ends: the client's socket left
 * Node's HTTP parser for the upgrade, and raw bytes are never relayed without
 * a switched protocol.
 */
export class UpgradeExchange implements Dispatcher.DispatchHandler {
  private status = 0;
  private bytesOut = 0;
  private settled = false;
  private wroteHead = false;
  private abortUpstream: ((err?: Error) => void) | null = null;

  constructor(
    private readonly owner: UpgradeOwner,
    private readonly spec: ForwardSpec,
    private readonly client: Duplex,
  ) {}

  start(pool: Dispatcher): void {
    const s = this.spec;
    pool.dispatch({ path: s.target, method: 'GET', headers: s.headers, body: null, upgrade: 'websocket' }, this);
  }

  cancel(err: AppError): void {
    if (this.settled) return;
    if (!this.wroteHead) closeAfterFlush(this.client, rawProblemResponse(err, true));
    else this.client.destroy();
    this.settled = true;
    this.status = err.spec.http;
    this.owner.exchangeDone({ outcome: 'error', status: this.status, bytesIn: 0, bytesOut: 0, errorCode: err.code });
    this.abortUpstream?.(err);
  }

  /** The client went away before the backend answered. */
  abandon(): void {
    if (this.settled) return;
    this.settle('error', 'CLIENT_CLOSED');
    this.abortUpstream?.(new Error('The client closed the connection.'));
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.settled) abort(new Error('The exchange already ended.'));
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void {
    if (this.settled) {
      socket.destroy();
      return;
    }
    this.status = statusCode;
    this.wroteHead = true;
    const raw = (rawHeaders ?? []).map((h) => (typeof h === 'string' ? Buffer.from(h, 'latin1') : h));
    const headers = filterResponseHeaders(raw);
    let head = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n';
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`;
    this.settled = true;
    this.owner.startRelay(socket, `${head}\r\n`);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200 || this.settled) return true;
    this.status = statusCode;
    this.wroteHead = true;
    const headers = filterResponseHeaders(rawHeaders);
    let head = `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? 'Unknown'}\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`;
    this.client.write(`${head}Connection: close\r\n\r\n`);
    this.resume = resume;
    return true;
  }

  private resume: (() => void) | null = null;

  onData(chunk: Buffer): boolean {
    this.bytesOut += chunk.length;
    if (this.client.write(chunk)) return true;
    this.client.once('drain', () => this.resume?.());
    return false;
  }

  onComplete(): void {
    if (this.settled) return;
    closeAfterFlush(this.client);
    this.settle(this.status >= 400 ? 'failure' : 'success');
  }

  onError(err: Error): void {
    if (this.settled) return;
    const e = upstreamError(err, this.spec.backend);
    if (!this.wroteHead) {
      this.status = e.spec.http;
      closeAfterFlush(this.client, rawProblemResponse(e, true));
    } else {
      this.client.destroy();
    }
    this.settle('error', e.code);
  }

  private settle(outcome: ExchangeResult['outcome'], errorCode?: string): void {
    this.settled = true;
    this.owner.exchangeDone({ outcome, status: this.status, bytesIn: 0, bytesOut: this.bytesOut, ...(errorCode !== undefined ? { errorCode } : {}) });
  }
}
