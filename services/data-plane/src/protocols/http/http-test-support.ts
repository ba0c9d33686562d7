import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ProtocolHandler, SessionContext, SessionResult } from '../handler';
import { socketPair } from '../../testing/socket-pair';

/**
 * Test support for the HTTP handler: a real node:http backend that records
 * what reached it, a minimal HTTP/1.1 response reader for the client side of a
 * tunnel (byte-level, so tests see exactly what the proxy wrote), and a helper
 * that opens a session over a real socket pair.
 */

/** What the backend saw of one request. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: string[];
  /** Request trailers, flat `[name, value, …]` (filled in once the body has ended). */
  readonly rawTrailers: string[];
}

export interface TestBackend {
  readonly port: number;
  readonly server: Server;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

/**
 * A backend on 127.0.0.1:0. The default route answers `200` with a JSON echo
 * of the request; `route` may answer instead (return true when it did).
 */
export const startBackend = async (route?: (req: IncomingMessage, res: ServerResponse) => boolean): Promise<TestBackend> => {
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer({ keepAliveTimeout: 10_000 }, (req, res) => {
    const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, rawTrailers: [] as string[] };
    seen.push(entry);
    req.once('end', () => entry.rawTrailers.push(...req.rawTrailers));
    if (route?.(req, res) === true) return;
    const body = JSON.stringify({ method: req.method, url: req.url });
    req.resume();
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    server,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
};

/** One response as the client received it. */
export interface WireResponse {
  readonly status: number;
  /** Lower-case names; repeated headers in order. */
  readonly headers: Record<string, string[]>;
  readonly head: string;
  readonly body: Buffer;
  /** Trailer fields of a chunked body (lower-case names); empty otherwise. */
  readonly trailers: Record<string, string[]>;
}

/** Reads HTTP/1.1 responses off a socket, byte by byte as they arrive (no sleeping). */
export class WireReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  private wake: (() => void) | null = null;

  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.length += d.length;
      this.notify();
    });
    const end = (): void => {
      this.ended = true;
      this.notify();
    };
    socket.on('end', end);
    socket.on('close', end);
  }

  /** Whether the peer ended or the socket closed. */
  get closed(): boolean {
    return this.ended;
  }

  /** Bytes received and not read yet. */
  get buffered(): number {
    return this.length;
  }

  /** Resolves once the socket is closed and everything before was read (false if unread bytes remain). */
  async waitClosed(): Promise<boolean> {
    while (!this.ended) await this.more();
    return this.length === 0;
  }

  async response(method = 'GET'): Promise<WireResponse> {
    const head = await this.readHead();
    if (head === null) throw new Error('The connection closed before a response.');
    const [statusLine, ...lines] = head.trimEnd().split('\r\n');
    const status = Number((statusLine ?? '').split(' ')[1]);
    const headers: Record<string, string[]> = {};
    for (const line of lines) {
      const i = line.indexOf(':');
      (headers[line.slice(0, i).trim().toLowerCase()] ??= []).push(line.slice(i + 1).trim());
    }
    let body: Buffer;
    const trailers: Record<string, string[]> = {};
    if (method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) body = Buffer.alloc(0);
    else if ((headers['transfer-encoding'] ?? []).join(',').includes('chunked')) body = await this.readChunked(trailers);
    else if (headers['content-length'] !== undefined) body = await this.readExactly(Number(headers['content-length'][0]));
    else body = await this.readToEnd();
    return { status, headers, head, body, trailers };
  }

  async readHead(): Promise<string | null> {
    for (;;) {
      const b = this.flat();
      const i = b.indexOf('\r\n\r\n');
      if (i >= 0) return this.take(i + 4).toString('latin1');
      if (!(await this.more())) return null;
    }
  }

  async readExactly(n: number): Promise<Buffer> {
    while (this.length < n) {
      if (!(await this.more())) throw new Error(`The connection closed after ${this.length} of ${n} bytes.`);
    }
    return this.take(n);
  }

  async readToEnd(): Promise<Buffer> {
    let open = true;
    while (open) open = await this.more();
    return this.take(this.length);
  }

  private async readLine(): Promise<string> {
    for (;;) {
      const b = this.flat();
      const i = b.indexOf('\r\n');
      if (i >= 0) return this.take(i + 2).toString('latin1').slice(0, -2);
      if (!(await this.more())) throw new Error('The connection closed inside a chunked body.');
    }
  }

  private async readChunked(trailers: Record<string, string[]>): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (;;) {
      const size = parseInt((await this.readLine()).split(';')[0] ?? '', 16);
      if (size === 0) {
        for (let line = await this.readLine(); line !== ''; line = await this.readLine()) {
          const i = line.indexOf(':');
          (trailers[line.slice(0, i).trim().toLowerCase()] ??= []).push(line.slice(i + 1).trim());
        }
        return Buffer.concat(parts);
      }
      parts.push(await this.readExactly(size));
      await this.readExactly(2);
    }
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    await new Promise<void>((r) => (this.wake = r));
    return true;
  }

  private flat(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  private take(n: number): Buffer {
    const b = this.flat();
    const out = b.subarray(0, n);
    const rest = b.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return out;
  }
}

/** A request head in wire form (`Host` first unless `host: null`). */
export const wireRequest = (method: string, target: string, headers: ReadonlyArray<readonly [string, string]> = [], body = '', host: string | null = 'localhost:8081'): string =>
  `${method} ${target} HTTP/1.1\r\n${host !== null ? `Host: ${host}\r\n` : ''}${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`;

/** A session opened over a real socket pair, as after a tunnel's 101. */
export interface OpenSession {
  readonly client: Socket;
  /** The node's end of the tunnel. */
  readonly server: Socket;
  readonly reader: WireReader;
  readonly done: Promise<SessionResult>;
  close(): void;
}

export const openSession = async (handler: ProtocolHandler, ctx: SessionContext, reader = true): Promise<OpenSession> => {
  const pair = await socketPair();
  const session = await handler.setup(pair.server, ctx);
  const done = session.run();
  return { client: pair.client, server: pair.server, reader: reader ? new WireReader(pair.client) : (null as unknown as WireReader), done, close: pair.close };
};

/** Waits until `check` holds, polling each `everyMs` (for conditions no event announces, such as a stalled stream). */
export const waitUntil = async (check: () => boolean, timeoutMs = 10_000, everyMs = 10): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('Condition not met in time.');
    await new Promise((r) => setTimeout(r, everyMs));
  }
};
