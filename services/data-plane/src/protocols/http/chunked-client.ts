import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type AgentOptions as HttpsAgentOptions } from 'node:https';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';

/**
 * The dispatch-handler callbacks (undici's classic interface, which `Exchange`
 * implements) this client drives, so one exchange serves both transports.
 */
export interface ForwardHandler {
  onConnect(abort: (err?: Error) => void): void;
  /** Called for every 1xx (from Node's `information` event) and then for the final head; false pauses the body. */
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean;
  /** False pauses the response until `resume` (from onHeaders) is called. */
  onData(chunk: Buffer): boolean;
  onComplete(trailers: Buffer[] | null): void;
  onError(err: Error): void;
}

/** A request body whose trailer fields (flat `[name, value, …]`, already filtered) are known once it ended. */
export interface TrailingBody extends Readable {
  readonly trailers: readonly string[];
}

/** One request for {@link ChunkedClient.dispatch}: the head as the session built it, and its chunked body. */
export interface ChunkedRequest {
  readonly path: string;
  readonly method: string;
  /** Flat `[name, value, …]`, `host` included; `transfer-encoding: chunked` is added here. */
  readonly headers: readonly string[];
  readonly body: TrailingBody | null;
}

/** Where and how to reach the backend; mirrors the undici pool's settings. */
export interface ChunkedClientOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: false | Pick<HttpsAgentOptions, 'rejectUnauthorized' | 'servername' | 'checkServerIdentity' | 'ca'>;
  readonly maxConnections: number;
  readonly keepAliveTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly maxHeaderBytes: number;
}

/** A timeout as the upstream error mapper knows it (`ETIMEDOUT` → 504). */
const timeoutError = (what: string): Error => Object.assign(new Error(`The backend ${what} timed out.`), { code: 'ETIMEDOUT' });

const toBuffers = (raw: readonly string[]): Buffer[] => raw.map((s) => Buffer.from(s, 'latin1'));

/**
 * Requests whose body is chunked go to the backend through Node's own HTTP
 * client rather than the undici pool: undici frames a streamed body itself and
 * cannot send request trailers, while Node's client can (`addTrailers`). This
 * adapter drives the same callbacks undici does — 1xx heads from Node's
 * `information` event, the final head, body chunks with backpressure (the
 * response is paused while the client's socket is full), the response
 * trailers, errors — so the exchange logic is shared. One keep-alive agent per
 * backend, created on first use; nothing is dialled before a request.
 * Timeouts mirror the pool's: connect, response head (after the request was
 * sent) and silence on the connection, each surfacing as `ETIMEDOUT` (504).
 */
export class ChunkedClient {
  private agent: HttpAgent | null = null;

  constructor(private readonly o: ChunkedClientOptions) {}

  dispatch(req: ChunkedRequest, handler: ForwardHandler): void {
    const o = this.o;
    const options: RequestOptions = {
      agent: this.agentFor(),
      host: o.host,
      port: o.port,
      method: req.method,
      path: req.path,
      // An array keeps the order and case built by the session; Node then adds no Host of its own.
      headers: [...req.headers, 'transfer-encoding', 'chunked'],
      setHost: false,
      maxHeaderSize: o.maxHeaderBytes,
      insecureHTTPParser: false,
    };
    const cr = o.tls === false ? httpRequest(options) : httpsRequest(options);
    new ChunkedExchange(cr, req.body, handler, o).start();
  }

  /** Closes every connection of the agent. */
  close(): void {
    this.agent?.destroy();
    this.agent = null;
  }

  private agentFor(): HttpAgent {
    if (this.agent !== null) return this.agent;
    const o = this.o;
    const common = { keepAlive: true, maxSockets: o.maxConnections, maxFreeSockets: o.maxConnections, timeout: o.keepAliveTimeoutMs, scheduling: 'lifo' as const };
    this.agent = o.tls === false ? new HttpAgent(common) : new HttpsAgent({ ...common, ...o.tls });
    return this.agent;
  }
}

/** One request on Node's client, reporting to its handler exactly once (complete or error). */
class ChunkedExchange {
  private done = false;
  private responded = false;
  private bodyEnded: boolean;
  private headersTimer: NodeJS.Timeout | null = null;
  private connectTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly cr: ClientRequest,
    private readonly body: TrailingBody | null,
    private readonly handler: ForwardHandler,
    private readonly o: ChunkedClientOptions,
  ) {
    this.bodyEnded = body === null;
  }

  start(): void {
    const { cr, body, handler } = this;
    // Listening first: an abort from onConnect destroys the request with an error.
    cr.on('error', this.fail);
    cr.on('close', this.clearTimers);
    handler.onConnect(this.abort);
    if (this.done) return;
    cr.on('socket', this.onSocket);
    // Silence on the connection (upload or response body), as the pool's body timeout.
    cr.setTimeout(this.o.bodyTimeoutMs, () => cr.destroy(timeoutError('connection')));
    cr.on('finish', () => {
      // The request is sent: the backend now has the pool's head timeout to answer (unless it already did).
      if (!this.done && !this.responded) this.headersTimer = setTimeout(() => cr.destroy(timeoutError('response head')), this.o.headersTimeoutMs);
    });
    cr.on('information', (info: { statusCode: number; statusMessage: string; rawHeaders: string[] }) => {
      this.headersTimer?.refresh();
      if (!this.done) handler.onHeaders(info.statusCode, toBuffers(info.rawHeaders), () => undefined, info.statusMessage);
    });
    cr.on('response', this.onResponse);
    if (body === null) {
      cr.end();
      return;
    }
    body.on('data', (chunk: Buffer) => {
      if (!cr.write(chunk)) body.pause();
    });
    cr.on('drain', () => body.resume());
    body.on('end', () => {
      this.bodyEnded = true;
      if (body.trailers.length > 0) {
        const pairs: Array<[string, string]> = [];
        for (let i = 0; i + 1 < body.trailers.length; i += 2) pairs.push([body.trailers[i] as string, body.trailers[i + 1] as string]);
        try {
          cr.addTrailers(pairs);
        } catch {
          // A field Node will not write (already filtered from Node's own parser, so not expected): the body still ends.
        }
      }
      cr.end();
    });
    body.on('error', (err: Error) => cr.destroy(err));
  }

  private readonly onSocket = (socket: Socket): void => {
    if (!socket.connecting) return;
    this.connectTimer = setTimeout(() => this.cr.destroy(timeoutError('connection attempt')), this.o.connectTimeoutMs);
    socket.once('connect', () => {
      if (this.connectTimer !== null) clearTimeout(this.connectTimer);
      this.connectTimer = null;
    });
  };

  private readonly onResponse = (res: IncomingMessage): void => {
    this.responded = true;
    if (this.headersTimer !== null) clearTimeout(this.headersTimer);
    this.headersTimer = null;
    if (this.done) {
      res.destroy();
      return;
    }
    res.on('error', this.fail);
    res.on('aborted', () => this.fail(Object.assign(new Error('The backend closed the connection before the response was complete.'), { code: 'ECONNRESET' })));
    res.on('data', (chunk: Buffer) => {
      if (!this.done && !this.handler.onData(chunk)) res.pause();
    });
    res.on('end', () => {
      if (this.done) return;
      this.done = true;
      this.handler.onComplete(toBuffers(res.rawTrailers));
      // The backend answered before taking the whole body (as undici does: stop sending, and do not reuse the connection).
      if (!this.bodyEnded) {
        this.body?.destroy();
        this.cr.destroy();
      }
    });
    const resume = (): void => {
      res.resume();
    };
    if (!this.handler.onHeaders(res.statusCode ?? 0, toBuffers(res.rawHeaders), resume, res.statusMessage ?? '')) res.pause();
  };

  /** The handler stops the exchange (client gone, session revoked, head refused). */
  private readonly abort = (err?: Error): void => {
    if (this.done) return;
    this.done = true;
    if (!this.bodyEnded) this.body?.destroy();
    this.cr.destroy(err);
  };

  private readonly fail = (err: Error): void => {
    if (this.done) return;
    this.done = true;
    if (!this.bodyEnded) this.body?.destroy();
    this.cr.destroy();
    this.handler.onError(err);
  };

  private readonly clearTimers = (): void => {
    if (this.headersTimer !== null) clearTimeout(this.headersTimer);
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.headersTimer = null;
    this.connectTimer = null;
  };
}
