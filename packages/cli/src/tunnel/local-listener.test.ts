import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { FakeTunnelNode } from '../testing/fake-tunnel-node';
import { checkLoopbackAddress, LocalListener, type ListenerEvent, type TunnelGrant } from './local-listener';

const GRANT_A = 'eyJhbGciOiJFZERTQSJ9.YQ.c2ln';
const GRANT_B = 'eyJhbGciOiJFZERTQSJ9.Yg.c2ln';

/** Sends `text` through a local connection and reads the same number of bytes back. */
const roundTrip = async (port: number, text: string): Promise<{ socket: Socket; echoed: string }> => {
  const socket = connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  socket.write(text);
  let echoed = '';
  while (echoed.length < text.length) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    echoed += chunk.toString();
  }
  return { socket, echoed };
};

/** Waits (turn by turn, bounded) until `cond` holds. */
const waitForEvents = async (cond: () => boolean): Promise<void> => {
  const end = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for listener events');
    await new Promise((r) => setImmediate(r));
  }
};

const closedOf = (socket: Socket): Promise<unknown> => (socket.closed ? Promise.resolve() : once(socket, 'close'));

/** A port on which nothing listens. */
const deadUrl = async (): Promise<string> => {
  const s: Server = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
};

describe('checkLoopbackAddress', () => {
  it.each([['127.0.0.1', '127.0.0.1'], ['localhost', '127.0.0.1'], ['127.0.0.2', '127.0.0.2'], ['::1', '::1']])('accepts %s', (a, b) => {
    expect(checkLoopbackAddress(a)).toBe(b);
  });
  it.each(['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'example.com', ''])('refuses %j', (a) => {
    expect(() => checkLoopbackAddress(a)).toThrow(/loopback interface only/);
  });
});

describe('LocalListener', () => {
  let node: FakeTunnelNode;
  let listener: LocalListener | null = null;
  let events: ListenerEvent[] = [];
  let grant: TunnelGrant;

  beforeEach(async () => {
    node = await FakeTunnelNode.start();
    grant = { token: GRANT_A, tunnelUrls: [node.url] };
    events = [];
  });
  afterEach(async () => {
    await listener?.close();
    listener = null;
    await node.close();
  });

  const start = async (): Promise<LocalListener> => {
    const sink = events;
    listener = await LocalListener.start({ grant: () => grant, onEvent: (e) => sink.push(e) });
    return listener;
  };

  it('binds 127.0.0.1 on a free port and relays bytes both ways, one tunnel per connection', async () => {
    const l = await start();
    expect(l.address).toBe('127.0.0.1');
    expect(l.port).toBeGreaterThan(0);
    const a = await roundTrip(l.port, 'hello through the tunnel');
    const b = await roundTrip(l.port, 'second');
    expect([a.echoed, b.echoed]).toEqual(['hello through the tunnel', 'second']);
    expect(node.grants).toEqual([GRANT_A, GRANT_A]);
    expect(node.openTunnels).toBe(2);
    a.socket.end();
    await closedOf(a.socket);
    b.socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(events.filter((e) => e.type === 'opened')).toHaveLength(2);
    expect(events).toContainEqual({ type: 'closed', id: 1, bytesSent: 24, bytesReceived: 24, url: node.url, endedBy: 'local' });
  });

  it('says which side ended a tunnel: the local client, or the node', async () => {
    const l = await start();
    const a = await roundTrip(l.port, 'one');
    a.socket.end();
    await closedOf(a.socket);
    const b = await roundTrip(l.port, 'two');
    node.dropTunnels();
    await closedOf(b.socket);
    await waitForEvents(() => events.filter((e) => e.type === 'closed').length === 2);
    const closed = events.filter((e) => e.type === 'closed').map((e) => (e.type === 'closed' ? [e.id, e.endedBy, e.url] : null));
    expect(closed).toEqual([
      [1, 'local', node.url],
      [2, 'node', node.url],
    ]);
  });

  it('does not lose bytes the client sends before the tunnel is up', async () => {
    const l = await start();
    const socket = connect({ host: '127.0.0.1', port: l.port });
    socket.write('early');
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString()));
    while (got.length < 5) await once(socket, 'data');
    expect(got).toBe('early');
    socket.destroy();
  });

  it('reads the current grant for each new connection', async () => {
    const l = await start();
    (await roundTrip(l.port, 'x')).socket.destroy();
    grant = { token: GRANT_B, tunnelUrls: [node.url] };
    (await roundTrip(l.port, 'y')).socket.destroy();
    expect(node.grants).toEqual([GRANT_A, GRANT_B]);
  });

  it('tries the next node when one is down', async () => {
    grant = { token: GRANT_A, tunnelUrls: [await deadUrl(), node.url] };
    const l = await start();
    const { socket, echoed } = await roundTrip(l.port, 'ok');
    expect(echoed).toBe('ok');
    socket.destroy();
    expect(events[0]).toMatchObject({ type: 'opened', url: node.url });
  });

  it('closes the local connection and reports the reason when the node refuses the grant', async () => {
    node.refuse = { code: 'GRANT_REVOKED', message: 'The grant has been revoked.' };
    const second = await FakeTunnelNode.start();
    grant = { token: GRANT_A, tunnelUrls: [node.url, second.url] };
    const l = await start();
    const socket = connect({ host: '127.0.0.1', port: l.port });
    await closedOf(socket);
    expect(events).toEqual([expect.objectContaining({ type: 'refused', error: expect.objectContaining({ code: 'GRANT_REVOKED', status: 401 }) })]);
    // A refusal every node would repeat is not retried elsewhere.
    expect(second.grants).toEqual([]);
    await second.close();
  });

  it('reports when no node can be reached', async () => {
    grant = { token: GRANT_A, tunnelUrls: [await deadUrl()] };
    const l = await start();
    const socket = connect({ host: '127.0.0.1', port: l.port });
    await closedOf(socket);
    expect(events[0]).toMatchObject({ type: 'failed' });
  });

  it('closes a local connection whose tunnel drops, and the next connection works again', async () => {
    const l = await start();
    const { socket } = await roundTrip(l.port, 'a');
    node.dropTunnels();
    await closedOf(socket);
    const again = await roundTrip(l.port, 'b');
    expect(again.echoed).toBe('b');
    again.socket.destroy();
  });

  it('close() ends every tunnel and stops listening', async () => {
    const l = await start();
    const { socket } = await roundTrip(l.port, 'a');
    await l.close();
    listener = null;
    await closedOf(socket);
    const refused = connect({ host: '127.0.0.1', port: l.port });
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 50));
    expect(node.openTunnels).toBe(0);
  });

  it('explains a busy port', async () => {
    const l = await start();
    await expect(LocalListener.start({ grant: () => grant, port: l.port })).rejects.toThrow(`port ${l.port} is already in use on 127.0.0.1`);
  });
});
