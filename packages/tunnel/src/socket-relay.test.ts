import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import type { Duplex } from 'node:stream';
import { createTestPki, type TestPki } from '@pa/testing';
import { PRIVATE_READ_BYTES, relaySockets, SHARED_READ_BYTES, type SocketRelay } from './index';

/** Listens on an ephemeral loopback port. */
const listen = async (server: Server): Promise<number> => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
};

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Writes `data` in chunks of the given sizes (cycled), honouring backpressure. */
const writeChunks = async (s: Duplex, data: Buffer, sizes: readonly number[]): Promise<void> => {
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - off);
    if (!s.write(data.subarray(off, off + n))) await once(s, 'drain');
    off += n;
  }
};

/** Collects what `s` receives until `bytes` have arrived. */
const receive = (s: Socket, bytes: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer): void => {
      parts.push(d);
      got += d.length;
      if (got >= bytes) {
        s.off('data', onData);
        resolve(Buffer.concat(parts));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
  });

interface RelayServer {
  port: number;
  server: Server;
  relays: SocketRelay[];
  /** The sockets the relay server accepted (before adoption). */
  accepted: Socket[];
  counts: { a: number; b: number; largestRead: number };
}

/** A relay server: each accepted connection is relayed to `targetPort` by relaySockets. */
const startRelay = async (targetPort: number, wrap?: (server: Server) => Server): Promise<RelayServer> => {
  const out: RelayServer = { port: 0, server: null as unknown as Server, relays: [], accepted: [], counts: { a: 0, b: 0, largestRead: 0 } };
  const onConnection = (c: Socket): void => {
    c.pause();
    out.accepted.push(c);
    const t = connect({ port: targetPort, host: '127.0.0.1', allowHalfOpen: true }, () => {
      const r = relaySockets(c, t, {
        onBytes: (from, n) => {
          out.counts[from] += n;
          out.counts.largestRead = Math.max(out.counts.largestRead, n);
        },
      });
      r.a.on('error', () => r.b.destroy());
      r.b.on('error', () => r.a.destroy());
      out.relays.push(r);
    });
    t.on('error', () => c.destroy());
  };
  const plain = createServer({ allowHalfOpen: true }, onConnection);
  out.server = wrap ? wrap(plain) : plain;
  out.port = await listen(out.server);
  return out;
};

/** An echo server (half-close aware: it ends when the client has). */
const startEcho = async (): Promise<{ server: Server; port: number; sockets: Set<Socket> }> => {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  return { server, sockets, port: await listen(server) };
};

/** A target that accepts a connection and reads nothing from it until `drain`. */
const startHeldTarget = async (): Promise<{ server: Server; port: number; connected(): boolean; drain(bytes: number): Promise<Buffer> }> => {
  let held: Socket | null = null;
  const server = createServer((s) => {
    held = s;
    s.pause();
  });
  return {
    server,
    port: await listen(server),
    connected: () => held !== null,
    drain: (bytes) => {
      const s = held as unknown as Socket;
      const all = receive(s, bytes);
      s.resume();
      return all;
    },
  };
};

const closeServer = (s: Server): Promise<void> => new Promise((r) => s.close(() => r()));

const waitFor = async (cond: () => boolean, what: string): Promise<void> => {
  const until = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
};

describe('relaySockets over real sockets', () => {
  let echo: Awaited<ReturnType<typeof startEcho>>;
  beforeAll(async () => {
    echo = await startEcho();
  });
  afterAll(async () => {
    for (const s of echo.sockets) s.destroy();
    await closeServer(echo.server);
  });

  it('relays 24 MiB both ways byte-exact in chunks from 1 byte to 1 MiB, adopting both plain sockets and using private buffers for bulk', async () => {
    const relay = await startRelay(echo.port);
    const client = connect(relay.port, '127.0.0.1');
    await once(client, 'connect');
    const data = randomBytes(24 * 1024 * 1024);
    const echoed = receive(client, data.length);
    await writeChunks(client, data, [1, 7, 70_000, 300_000, 1 << 20, 5, 65_536, 16_384, 262_144, 123]);
    const back = await echoed;
    expect(back.length).toBe(data.length);
    expect(sha(back)).toBe(sha(data));
    expect(relay.counts.a).toBe(data.length);
    expect(relay.counts.b).toBe(data.length);
    expect(relay.relays[0]!.bufferKinds().a).not.toBe('stream');
    expect(relay.relays[0]!.bufferKinds().b).not.toBe('stream');
    // A read larger than the shared buffer can only have landed in a private one.
    expect(relay.counts.largestRead).toBeGreaterThan(SHARED_READ_BYTES);
    expect(relay.counts.largestRead).toBeLessThanOrEqual(PRIVATE_READ_BYTES);

    // Small exchanges afterwards put both sides back on the shared buffer.
    for (let i = 0; i < 3; i++) {
      const small = receive(client, 10);
      client.write('0123456789');
      expect((await small).toString()).toBe('0123456789');
    }
    expect(relay.relays[0]!.bufferKinds()).toEqual({ a: 'shared', b: 'shared' });
    client.destroy();
    await closeServer(relay.server);
  });

  it('passes a half-close on in each direction and closes both sockets when both sides have ended', async () => {
    // Target: reads to the end, then answers with what it got, reversed, and ends.
    const target = createServer({ allowHalfOpen: true }, (s) => {
      const parts: Buffer[] = [];
      s.on('data', (d: Buffer) => parts.push(d));
      s.on('end', () => s.end(Buffer.from(Buffer.concat(parts).toString().split('').reverse().join(''))));
    });
    const relay = await startRelay(await listen(target));
    const client = connect({ port: relay.port, host: '127.0.0.1', allowHalfOpen: true });
    await once(client, 'connect');
    let answer = '';
    client.on('data', (d: Buffer) => (answer += d.toString()));
    client.end('abc-def');
    await once(client, 'end');
    expect(answer).toBe('fed-cba');
    await waitFor(() => relay.relays[0] !== undefined && relay.relays[0].a.destroyed && relay.relays[0].b.destroyed, 'both relayed sockets to close');
    client.destroy();
    await closeServer(relay.server);
    await closeServer(target);
  });

  it('relays the bytes an adopted socket had already buffered first, in order', async () => {
    const target = createServer((s) => {
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.endsWith('!')) s.end(got);
      });
    });
    const targetPort = await listen(target);
    let relayed: SocketRelay | null = null;
    const server = createServer({ allowHalfOpen: true }, (c) => {
      // Let the first bytes land in the socket's own buffer, put a prefix back in front, then relay.
      c.once('readable', () => {
        c.unshift(Buffer.from('head:'));
        const t = connect(targetPort, '127.0.0.1', () => {
          relayed = relaySockets(c, t);
        });
      });
    });
    const port = await listen(server);
    const client = connect(port, '127.0.0.1');
    client.write('first;');
    await waitFor(() => relayed !== null, 'the relay to start');
    client.write('second!');
    const [reply] = (await once(client, 'data')) as [Buffer];
    expect(reply.toString()).toBe('head:first;second!');
    client.destroy();
    await closeServer(server);
    await closeServer(target);
  });

  it('stops reading while the other side has too much queued, then resumes byte-exact; memory stays bounded', async () => {
    const target = await startHeldTarget();
    const relay = await startRelay(target.port);
    const client = connect(relay.port, '127.0.0.1');
    await once(client, 'connect');
    const data = randomBytes(64 * 1024 * 1024);
    const writing = writeChunks(client, data, [256 * 1024]);
    await waitFor(() => relay.relays.length === 1 && target.connected(), 'the relay and the target connection');
    const r = relay.relays[0]!;
    // The relay reads until the target's socket has more than 512 KiB queued, then stops.
    await waitFor(() => r.b.writableLength >= 512 * 1024, 'the upstream queue to fill');
    const queued = r.b.writableLength;
    const read = relay.counts.a;
    // The writer is held back by TCP (its own queue grows), and the relay keeps at most one more read queued.
    await waitFor(() => client.writableLength > 0, 'the client to be held back');
    expect(read).toBeLessThan(data.length);
    expect(queued).toBeLessThanOrEqual(512 * 1024 + PRIVATE_READ_BYTES);
    expect(r.b.writableLength).toBe(queued);
    // Now let the target read: everything arrives, in order.
    const all = target.drain(data.length);
    await writing;
    expect(sha(await all)).toBe(sha(data));
    client.destroy();
    await closeServer(relay.server);
    await closeServer(target.server);
  });

  it('keeps small reads intact while the other side is backed up (they are copied out of the shared buffer)', async () => {
    const target = await startHeldTarget();
    const relay = await startRelay(target.port);
    const client = connect(relay.port, '127.0.0.1');
    await once(client, 'connect');
    const sent: Buffer[] = [];
    await waitFor(() => relay.relays.length === 1 && target.connected(), 'the relay and the target connection');
    const r = relay.relays[0]!;
    // 8 KiB at a time, one per event-loop turn, so each is its own (shared-buffer) read, until the
    // target's socket has writes queued; then 200 more land behind them.
    let extra = 200;
    for (let i = 0; i < 20_000 && extra > 0; i++) {
      const b = randomBytes(8192);
      sent.push(b);
      client.write(b);
      await new Promise((res) => setImmediate(res));
      if (r.b.writableLength > 0) extra -= 1;
    }
    expect(extra).toBe(0);
    expect(r.bufferKinds().a).toBe('shared');
    const total = sent.reduce((n, b) => n + b.length, 0);
    expect(sha(await target.drain(total))).toBe(sha(Buffer.concat(sent)));
    client.destroy();
    await closeServer(relay.server);
    await closeServer(target.server);
  });

  it('idle() frees a quiet private buffer, and bulk traffic afterwards is still byte-exact', async () => {
    const got: Buffer[] = [];
    let gotBytes = 0;
    const target = createServer((s) => {
      s.on('data', (d: Buffer) => {
        got.push(d);
        gotBytes += d.length;
      });
    });
    const relay = await startRelay(await listen(target));
    const client = connect(relay.port, '127.0.0.1');
    await once(client, 'connect');
    const sent: Buffer[] = [];
    let sentBytes = 0;
    const send = async (n: number): Promise<void> => {
      const b = randomBytes(n);
      sent.push(b);
      sentBytes += n;
      await writeChunks(client, b, [1 << 20]);
      await waitFor(() => gotBytes === sentBytes, 'the target to receive everything sent');
    };
    // Bulk until a quiet moment finds the client side on a private buffer (its last read was large).
    for (let i = 0; i < 20 && relay.relays[0]?.bufferKinds().a !== 'private'; i++) await send(4 << 20);
    const r = relay.relays[0]!;
    expect(r.bufferKinds().a).toBe('private');
    r.idle(); // marks the sides quiet
    expect(r.bufferKinds().a).toBe('private');
    r.idle(); // nothing read since: back to the shared buffer
    expect(r.bufferKinds()).toEqual({ a: 'shared', b: 'shared' });
    await send(8 << 20);
    await send(3);
    expect(sha(Buffer.concat(got))).toBe(sha(Buffer.concat(sent)));
    client.destroy();
    await closeServer(relay.server);
    await closeServer(target);
  });

  it('keeps the server connection count right: close() waits for the relayed connection, and destroying the accepted socket closes it', async () => {
    const relay = await startRelay(echo.port);
    const client = connect(relay.port, '127.0.0.1');
    await once(client, 'connect');
    const pong = receive(client, 4);
    client.write('ping');
    await pong;
    const count = await new Promise<number>((res, rej) => relay.server.getConnections((e, n) => (e ? rej(e) : res(n))));
    expect(count).toBe(1);
    let closed = false;
    const serverClosed = closeServer(relay.server).then(() => (closed = true));
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(false);
    // The socket the server handed out was adopted; destroying it must close the real connection.
    relay.accepted[0]!.destroy();
    await once(client, 'close');
    await serverClosed;
    expect(relay.relays[0]!.a.destroyed).toBe(true);
  });

  describe('with a TLS side', () => {
    let pki: TestPki;
    beforeAll(() => {
      pki = createTestPki();
    });
    afterAll(() => pki.cleanup());

    it('relays a TLS socket with stream reads and still adopts the plain side', async () => {
      const ca = pki.ca('relay-ca');
      const cert = pki.issue(ca, 'localhost', { ips: ['127.0.0.1'] });
      let relayed: SocketRelay | null = null;
      const server = createTlsServer({ cert: cert.cert, key: cert.key }, (c) => {
        c.pause();
        const t = connect({ port: echo.port, host: '127.0.0.1', allowHalfOpen: true }, () => {
          relayed = relaySockets(c, t);
        });
      });
      const port = await listen(server as unknown as Server);
      const client = tlsConnect({ port, host: '127.0.0.1', ca: ca.cert });
      await once(client, 'secureConnect');
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const echoed = receive(client, data.length);
      await writeChunks(client, data, [100_000, 1]);
      expect(sha(await echoed)).toBe(sha(data));
      expect(relayed!.bufferKinds().a).toBe('stream');
      expect(relayed!.bufferKinds().b).not.toBe('stream');
      client.destroy();
      await closeServer(server as unknown as Server);
    });
  });
});
