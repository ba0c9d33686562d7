/**
 * Just enough Redis (RESP2 over one socket) for the bench to check that Redis
 * answers and to delete the keys of its own prefix afterwards, without a
 * client library of its own (the node itself uses ioredis through @pa/state).
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

type Reply = string | number | null | Reply[] | Error;

/** Parses one reply at `at`; null when the buffer does not hold all of it yet. */
const parse = (b: Buffer, at: number): [Reply, number] | null => {
  const eol = b.indexOf('\r\n', at);
  if (eol < 0) return null;
  const type = String.fromCharCode(b[at] as number);
  const line = b.toString('utf8', at + 1, eol);
  const next = eol + 2;
  if (type === '+') return [line, next];
  if (type === '-') return [new Error(line), next];
  if (type === ':') return [Number(line), next];
  if (type === '$') {
    const n = Number(line);
    if (n < 0) return [null, next];
    if (b.length < next + n + 2) return null;
    return [b.toString('utf8', next, next + n), next + n + 2];
  }
  if (type === '*') {
    const n = Number(line);
    if (n < 0) return [null, next];
    const items: Reply[] = [];
    let pos = next;
    for (let i = 0; i < n; i += 1) {
      const r = parse(b, pos);
      if (!r) return null;
      items.push(r[0]);
      pos = r[1];
    }
    return [items, pos];
  }
  throw new Error(`unexpected RESP type ${type}`);
};

class MiniRedis {
  private buf = Buffer.alloc(0);
  private waiting: Array<(r: Reply) => void> = [];

  constructor(private readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      for (;;) {
        const r = parse(this.buf, 0);
        if (!r) break;
        this.buf = this.buf.subarray(r[1]);
        this.waiting.shift()?.(r[0]);
      }
    });
  }

  static async open(url: string, timeoutMs = 1000): Promise<MiniRedis> {
    const u = new URL(url);
    const socket = connect({ host: u.hostname || '127.0.0.1', port: Number(u.port || 6379) });
    const timer = setTimeout(() => socket.destroy(new Error(`Redis at ${u.host} did not answer in ${timeoutMs} ms`)), timeoutMs);
    try {
      await once(socket, 'connect');
    } finally {
      clearTimeout(timer);
    }
    const client = new MiniRedis(socket);
    if (u.password) await client.cmd(u.username ? ['AUTH', decodeURIComponent(u.username), decodeURIComponent(u.password)] : ['AUTH', decodeURIComponent(u.password)]);
    const db = u.pathname.replace('/', '');
    if (db) await client.cmd(['SELECT', db]);
    return client;
  }

  cmd(args: readonly string[], timeoutMs = 5000): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Redis ${args[0] ?? ''} timed out`)), timeoutMs);
      this.waiting.push((r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      });
      this.socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** True when a Redis server answers PING at `url` within a second. */
export const redisReachable = async (url: string): Promise<boolean> => {
  try {
    const c = await MiniRedis.open(url);
    try {
      return (await c.cmd(['PING'], 1000)) === 'PONG';
    } finally {
      c.close();
    }
  } catch {
    return false;
  }
};

/** Deletes every key under `prefix`; returns how many. */
export const deleteKeys = async (url: string, prefix: string): Promise<number> => {
  if (!prefix.startsWith('pabench:')) throw new Error(`refusing to delete keys outside the bench's own prefix: ${prefix}`);
  const c = await MiniRedis.open(url);
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const r = await c.cmd(['SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000']);
      if (!Array.isArray(r) || typeof r[0] !== 'string' || !Array.isArray(r[1])) throw new Error('unexpected SCAN reply');
      cursor = r[0];
      const keys = r[1].filter((k): k is string => typeof k === 'string');
      if (keys.length) deleted += Number(await c.cmd(['DEL', ...keys]));
    } while (cursor !== '0');
  } finally {
    c.close();
  }
  return deleted;
};
