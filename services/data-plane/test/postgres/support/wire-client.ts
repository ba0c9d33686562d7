import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { BackendFramer, frontend, readCommandComplete, readErrorResponse, readReadyForQuery } from '@pa/pgwire';

/**
 * A tiny raw PostgreSQL client for byte-level tests through the proxy: it
 * sends hand-built frontend messages (pipelined as the test wants) and
 * collects the backend messages, decoded just enough to assert on.
 */
export interface WireMessage {
  /** Type byte as a character ('Z', 'E', 'C', '1', '2', 'D', …). */
  readonly type: string;
  readonly body: Buffer;
}

const str = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');
const frame = (type: string, body: Buffer): Buffer => {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
};
const i16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n, 0);
  return b;
};
const i32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
};

/** Frontend message builders (spec layouts). */
export const msg = {
  query: (sql: string): Buffer => frontend.query(sql),
  parse: (name: string, sql: string, types: number[] = []): Buffer => frame('P', Buffer.concat([str(name), str(sql), i16(types.length), ...types.map(i32)])),
  bind: (portal: string, statement: string, params: (Buffer | string | null)[] = [], paramFormats: number[] = [], resultFormats: number[] = []): Buffer =>
    frame(
      'B',
      Buffer.concat([
        str(portal),
        str(statement),
        i16(paramFormats.length),
        ...paramFormats.map(i16),
        i16(params.length),
        ...params.map((p) => (p === null ? i32(-1) : Buffer.concat([i32(Buffer.byteLength(p)), Buffer.from(p)]))),
        i16(resultFormats.length),
        ...resultFormats.map(i16),
      ]),
    ),
  execute: (portal = '', maxRows = 0): Buffer => frame('E', Buffer.concat([str(portal), i32(maxRows)])),
  describe: (target: 'S' | 'P', name: string): Buffer => frame('D', Buffer.concat([Buffer.from(target), str(name)])),
  close: (target: 'S' | 'P', name: string): Buffer => frame('C', Buffer.concat([Buffer.from(target), str(name)])),
  sync: (): Buffer => frontend.sync(),
  flush: (): Buffer => frontend.flush(),
  terminate: (): Buffer => frontend.terminate(),
  functionCall: (oid: number, args: (Buffer | null)[] = []): Buffer =>
    frame('F', Buffer.concat([i32(oid), i16(0), i16(args.length), ...args.map((a) => (a === null ? i32(-1) : Buffer.concat([i32(a.length), a]))), i16(0)])),
  copyData: (data: string | Buffer): Buffer => frame('d', Buffer.from(data)),
  copyDone: (): Buffer => frame('c', Buffer.alloc(0)),
};

export class WireClient {
  private readonly framer = new BackendFramer({ inspect: 'all', maxInspectedLength: 64 * 1024 * 1024 });
  private readonly queue: WireMessage[] = [];
  private waiter: (() => void) | null = null;
  private closed = false;
  readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      const err = this.framer.push(chunk, (f) => this.queue.push({ type: String.fromCharCode(f.type), body: Buffer.from(f.body as Buffer) }));
      if (err) socket.destroy(err);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Connects and completes the startup (the proxy asks no password). Returns the startup messages. */
  static async connect(port: number, database: string, params: Record<string, string> = {}): Promise<{ client: WireClient; startup: WireMessage[] }> {
    const socket = connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    socket.setNoDelay(true);
    const client = new WireClient(socket);
    client.send(frontend.startupMessage({ user: 'tester', database, ...params }));
    const startup = await client.readUntil((m) => m.type === 'Z' || m.type === 'E');
    return { client, startup };
  }

  send(...buffers: Buffer[]): void {
    this.socket.write(Buffer.concat(buffers));
  }

  /** Next message, or null once the connection closed. */
  async next(): Promise<WireMessage | null> {
    for (;;) {
      const m = this.queue.shift();
      if (m) return m;
      if (this.closed) return null;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  /** Messages up to and including the first that matches (or up to the close). */
  async readUntil(stop: (m: WireMessage) => boolean): Promise<WireMessage[]> {
    const out: WireMessage[] = [];
    for (;;) {
      const m = await this.next();
      if (!m) return out;
      out.push(m);
      if (stop(m)) return out;
    }
  }

  /** Messages up to the next ReadyForQuery. */
  readyForQuery(): Promise<WireMessage[]> {
    return this.readUntil((m) => m.type === 'Z');
  }

  /** Resolves when the server closed the connection. */
  async closedByServer(): Promise<WireMessage[]> {
    return this.readUntil(() => false);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The types of `msgs` as a string, e.g. `12CZ`. */
export const types = (msgs: readonly WireMessage[]): string => msgs.map((m) => m.type).join('');

/** SQLSTATE and message of an ErrorResponse/NoticeResponse. */
export const errorOf = (m: WireMessage | undefined): { code: string; message: string; severity: string } => {
  if (!m) throw new Error('no message');
  const r = readErrorResponse(m.body);
  if (!r.ok) throw r.error;
  return { code: r.value.code, message: r.value.message, severity: r.value.severity };
};

/** Transaction status of a ReadyForQuery. */
export const statusOf = (msgs: readonly WireMessage[]): string => {
  const z = [...msgs].reverse().find((m) => m.type === 'Z');
  if (!z) throw new Error('no ReadyForQuery');
  const r = readReadyForQuery(z.body);
  if (!r.ok) throw r.error;
  return r.value;
};

/** Command tags of the CommandComplete messages. */
export const tagsOf = (msgs: readonly WireMessage[]): string[] =>
  msgs.filter((m) => m.type === 'C').map((m) => {
    const r = readCommandComplete(m.body);
    if (!r.ok) throw r.error;
    return r.value;
  });

/** Text values of the DataRow messages (first column by default). */
export const rowsOf = (msgs: readonly WireMessage[]): (string | null)[][] =>
  msgs
    .filter((m) => m.type === 'D')
    .map((m) => {
      const n = m.body.readInt16BE(0);
      const out: (string | null)[] = [];
      let p = 2;
      for (let i = 0; i < n; i += 1) {
        const len = m.body.readInt32BE(p);
        p += 4;
        if (len < 0) out.push(null);
        else {
          out.push(m.body.subarray(p, p + len).toString('utf8'));
          p += len;
        }
      }
      return out;
    });
