import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { startFaultProxy, testRedisUrl, type FaultProxy } from '@pa/testing';
import { openTunnel, TunnelRefusedError } from '@pa/tunnel';
import { ADMIN_PASSWORD, System, waitFor } from '../src';

/** Faults on real parts: Redis outage, a node dying mid-stream, a client that never reads, shared rate limits. */
describe('end to end under faults', () => {
  let sys: System;
  let redisProxy: FaultProxy;
  let admin: string;
  let user: string;
  let backend: Server;
  let backendPort: number;
  const backendSockets = new Set<Socket>();
  /** Per connection: echo, or on "flood" write until the proxy pushes back. */
  const floods: Array<{ socket: Socket; written: number }> = [];

  beforeAll(async () => {
    backend = createServer((s) => {
      backendSockets.add(s);
      s.on('close', () => backendSockets.delete(s));
      s.on('error', () => undefined);
      s.once('data', (first: Buffer) => {
        if (first.toString() !== 'flood') {
          s.write(first);
          s.pipe(s);
          return;
        }
        const f = { socket: s, written: 0 };
        floods.push(f);
        const chunk = Buffer.alloc(64 * 1024, 120);
        const pump = () => {
          while (f.written < 512 * 1024 * 1024) {
            f.written += chunk.length;
            if (!s.write(chunk)) {
              s.once('drain', pump);
              return;
            }
          }
        };
        pump();
      });
    });
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    backendPort = (backend.address() as AddressInfo).port;
    redisProxy = await startFaultProxy(testRedisUrl());
    sys = await System.start(2, { nodeRedisUrl: redisProxy.url, nodeOverrides: { limits: { tunnelsPerUserPerMinute: 20 } } });
    admin = await sys.login('admin', ADMIN_PASSWORD);
    await sys.api('POST', '/roles', admin, { name: 'ops', permissions: [] });
    await sys.api('POST', '/users', admin, { username: 'uma', password: 'uma-password-1234', roles: ['ops'] });
    await sys.api('POST', '/connections', admin, { name: 'svc', protocol: 'tcp', host: '127.0.0.1', port: backendPort, tags: { env: 'e2e' } });
    await sys.api('POST', '/policies', admin, { name: 'ops', roles: ['ops'], selector: { tags: { env: 'e2e' } }, rules: [{ effect: 'allow', type: 'all' }] });
    user = await sys.login('uma', 'uma-password-1234');
  }, 60_000);
  afterAll(async () => {
    for (const s of backendSockets) s.destroy();
    await new Promise((r) => backend.close(r));
    await sys.stop();
    await redisProxy.close();
  });

  const echoOnce = async (socket: Socket, text: string): Promise<string> => {
    socket.write(text);
    let got = '';
    while (got.length < text.length) got += String((await once(socket, 'data'))[0]);
    return got;
  };

  it('applies backpressure to a client that never reads: the node stops pulling from the backend', async () => {
    const grant = await sys.issueGrant(user, 'svc');
    const { socket } = await openTunnel({ url: sys.nodes[0]!.tunnelUrl, grant: grant.grantToken });
    socket.pause(); // never read
    socket.write('flood');
    await waitFor(() => floods.length > 0, 'the backend to start flooding');
    const f = floods[floods.length - 1]!;
    // The backend writes only when its socket drains. Wait until it stalls: no progress for 25 checks in a row.
    let last = -1;
    let still = 0;
    await waitFor(() => {
      still = f.written === last ? still + 1 : 0;
      last = f.written;
      return still >= 25 && f.socket.writableNeedDrain;
    }, 'the backend to stall on backpressure', 20_000);
    // What left the backend is bounded by socket buffers and stream high-water marks, not by the 512 MiB it wanted to send.
    expect(f.written).toBeLessThan(64 * 1024 * 1024);
    socket.destroy();
  });

  it('shares tunnel rate limits across nodes through Redis', async () => {
    await sys.api('POST', '/users', admin, { username: 'rita', password: 'rita-password-1234', roles: ['ops'] });
    const rita = await sys.login('rita', 'rita-password-1234');
    const grant = await sys.issueGrant(rita, 'svc');
    const outcomes: string[] = [];
    for (let i = 0; i < 22; i += 1) {
      const node = sys.nodes[i % 2]!;
      try {
        const t = await openTunnel({ url: node.tunnelUrl, grant: grant.grantToken });
        t.socket.destroy();
        outcomes.push('ok');
      } catch (err) {
        outcomes.push((err as TunnelRefusedError).code);
      }
    }
    // 20 a minute per user in all, whichever node is asked: alternating nodes does not double it.
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(20);
    expect(outcomes.slice(20)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
  });

  it('keeps serving when one node dies mid-stream: its tunnel closes, the other node still relays', async () => {
    const grant = await sys.issueGrant(user, 'svc');
    const [a, b] = sys.nodes as [(typeof sys.nodes)[number], (typeof sys.nodes)[number]];
    const onB = await openTunnel({ url: b.tunnelUrl, grant: grant.grantToken });
    expect(await echoOnce(onB.socket, 'before')).toBe('before');
    const closed = once(onB.socket, 'close');
    await b.stop();
    sys.nodes = sys.nodes.filter((n) => n !== b);
    await closed;
    const onA = await openTunnel({ url: a.tunnelUrl, grant: grant.grantToken });
    expect(await echoOnce(onA.socket, 'after')).toBe('after');
    onA.socket.destroy();
    // The control plane stops offering the drained node.
    await waitFor(async () => (await sys.nodeIds()).length === 1, 'node deregistered');
    const next = await sys.issueGrant(user, 'svc');
    expect(next.tunnelUrls).toEqual([a.tunnelUrl]);
    await sys.startNode('node-b2');
  }, 30_000);

  it('rides out a Redis outage: admits on the last known revocation state, and recovers when Redis returns', async () => {
    const grant = await sys.issueGrant(user, 'svc');
    const node = sys.nodes[0]!;
    await redisProxy.cut();
    try {
      // Within the staleness bound the node still admits (last known state) and relays.
      const t = await openTunnel({ url: node.tunnelUrl, grant: grant.grantToken });
      expect(await echoOnce(t.socket, 'during')).toBe('during');
      t.socket.destroy();
    } finally {
      await redisProxy.restore();
    }
    await waitFor(async () => {
      const r = await fetch(`${node.adminUrl}/readyz`);
      return r.status === 200;
    }, 'node ready again after Redis returns');
    const t2 = await openTunnel({ url: node.tunnelUrl, grant: grant.grantToken });
    expect(await echoOnce(t2.socket, 'after')).toBe('after');
    t2.socket.destroy();
  }, 30_000);

  it('refuses a revoked grant on every node even when one learned it only by resync', async () => {
    const grant = await sys.issueGrant(user, 'svc');
    await sys.api('POST', `/grants/${grant.grantId}/revoke`, admin, { reason: 'faults test' });
    for (const n of sys.nodes) {
      await waitFor(async () => {
        const err = await openTunnel({ url: n.tunnelUrl, grant: grant.grantToken }).then(
          (t) => {
            t.socket.destroy();
            return null;
          },
          (e: unknown) => e,
        );
        return err instanceof TunnelRefusedError && err.code === 'AUTH_SESSION_REVOKED';
      }, `node ${n.nodeId} refuses the revoked grant`);
    }
  });
});
