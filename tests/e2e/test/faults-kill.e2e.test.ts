import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { startFaultProxy, type FaultProxy } from '@pa/testing';
import { ADMIN_PASSWORD, exchange, PaUser, System, waitFor, type NodeProcess, type PaProcess } from '../src';

/**
 * A data-plane node killed with SIGKILL — no drain, no audit flush, its sockets
 * closed by the kernel — while a `pa connect` tunnel streams through it. The
 * node runs as its own OS process (the real main.ts, configured through the
 * environment); the other node runs in-process. Its gRPC to the control plane
 * goes through a fault proxy, so the test decides what of its audit reaches
 * the control plane before the kill: one tunnel's events are stored but never
 * acknowledged (replies held back), the streaming tunnel's events never leave
 * the node's spool. After a restart on the same data directory both must be in
 * the control plane's audit table exactly once.
 */
describe('end to end: a node killed mid-stream', () => {
  let sys: System;
  let proxy: FaultProxy;
  let backend: Server;
  const backendSockets = new Set<Socket>();
  const user = new PaUser();
  let killed: NodeProcess;
  let live: { nodeId: string; tunnelUrl: string };
  let pa: PaProcess | null = null;

  beforeAll(async () => {
    // "stream": the backend sends 1 KiB every 5 ms until the connection goes; anything else is echoed.
    backend = createServer((s) => {
      backendSockets.add(s);
      s.on('error', () => undefined);
      s.once('data', (first: Buffer) => {
        if (first.toString() !== 'stream') {
          s.write(first);
          s.pipe(s);
          return;
        }
        const chunk = Buffer.alloc(1024, 115);
        const timer = setInterval(() => s.write(chunk), 5);
        s.once('close', () => clearInterval(timer));
      });
      s.on('close', () => backendSockets.delete(s));
    });
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    sys = await System.start(0);
    proxy = await startFaultProxy(`tcp://${sys.cp.grpcAddress}`);
    // Ids order the grant's tunnel URLs when loads are equal: node-1 (the process) comes first.
    killed = await sys.spawnNode('node-1', { grpcAddress: `127.0.0.1:${proxy.port}` });
    live = await sys.startNode('node-2');
    const admin = await sys.login('admin', ADMIN_PASSWORD);
    for (const [path, body] of [
      ['/roles', { name: 'ops', permissions: [] }],
      ['/users', { username: 'kim', password: 'kim-password-12345', roles: ['ops'] }],
      ['/connections', { name: 'stream', protocol: 'tcp', host: '127.0.0.1', port: (backend.address() as AddressInfo).port, tags: { env: 'e2e' } }],
      ['/policies', { name: 'ops', roles: ['ops'], selector: { tags: { env: 'e2e' } }, rules: [{ effect: 'allow', type: 'all' }] }],
    ] as const) {
      const res = await sys.api('POST', path, admin, body);
      if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    const login = await user.run(['login', '--server', sys.cp.url, '--username', 'kim', '--password-stdin'], 'kim-password-12345\n');
    if (login.code !== 0) throw new Error(`pa login: ${login.stderr}`);
  }, 120_000);

  afterAll(async () => {
    if (pa !== null && pa.child.exitCode === null) {
      pa.child.kill('SIGINT');
      await pa.exited;
    }
    user.cleanup();
    for (const s of backendSockets) s.destroy();
    await new Promise((r) => backend.close(r));
    await sys.stop();
    await proxy.close();
  });

  const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const local = async (port: number): Promise<Socket> => {
    const s = connect({ port, host: '127.0.0.1' });
    s.on('error', () => undefined);
    await once(s, 'connect');
    return s;
  };
  /** Rows the node itself recorded (the control plane's own node.* rows about it excluded). */
  const nodeRows = async (): Promise<Array<{ id: string; action: string; tunnel: string }>> =>
    (await sys.query<{ id: string; action: string; tunnel: string }>("SELECT id, action, details->>'tunnelId' AS tunnel FROM audit_events WHERE node_id = 'node-1' AND action NOT LIKE 'node.%' ORDER BY recorded_at, id")).rows;

  it('ends the stream, reconnects new connections through the live node, and ships the spooled audit exactly once after a restart', async () => {
    const spool = async (n: NodeProcess): Promise<{ pending: number; queued: number }> => ({
      pending: (await n.metric('pa_audit_spool_pending_events')) ?? -1,
      queued: (await n.metric('pa_audit_spool_queued_events')) ?? -1,
    });
    pa = user.start(['connect', 'stream']);
    const port = Number((await pa.waitFor(/Connected to stream \(tcp\) on 127\.0\.0\.1:(\d+)/))[1]);

    // Everything the node recorded so far is acknowledged: nothing is in flight.
    await waitFor(async () => {
      const s = await spool(killed);
      return s.pending === 0 && s.queued === 0;
    }, 'the node to have shipped everything');
    const before = new Set((await nodeRows()).map((r) => r.id));

    // 1. The control plane's replies are held: a tunnel's events reach it and are stored, the node never hears the acks.
    proxy.freezeReplies();
    const first = await local(port);
    expect(await exchange(first, 'hello')).toBe('hello');
    await pa.waitFor(new RegExp(`#1 opened from \\S+ via ${escape(killed.tunnelUrl)}`), 'stderr');
    first.end();
    await once(first, 'close');
    await waitFor(async () => {
      const s = await spool(killed);
      return s.pending >= 3 && s.queued === 0;
    }, 'the first tunnel (open, start, end) durable in the spool');
    await waitFor(async () => (await nodeRows()).some((r) => !before.has(r.id)), 'some of it stored by the control plane');

    // 2. The control plane is unreachable: the streaming tunnel's events stay in the node's spool.
    await proxy.cut();
    const stream = await local(port);
    let received = 0;
    stream.on('data', (d: Buffer) => (received += d.length));
    stream.write('stream');
    await pa.waitFor(new RegExp(`#2 opened from \\S+ via ${escape(killed.tunnelUrl)}`), 'stderr');
    await waitFor(() => received >= 64 * 1024, 'the stream to flow');
    await waitFor(async () => {
      const s = await spool(killed);
      return s.pending >= 5 && s.queued === 0;
    }, 'the streaming tunnel (open, start) durable in the spool');
    const atKill = await spool(killed);
    const storedAtKill = (await nodeRows()).filter((r) => !before.has(r.id)).length;
    expect(storedAtKill).toBeGreaterThanOrEqual(1);
    expect(storedAtKill).toBeLessThan(atKill.pending);

    // 3. SIGKILL while bytes flow: the client's stream ends (it does not hang).
    // (A reset is an end too: 'close' follows 'error'.)
    const ended = new Promise<void>((resolve, reject) => {
      const bound = setTimeout(() => reject(new Error('the stream did not end within 10 s of the kill')), 10_000);
      stream.once('close', () => {
        clearTimeout(bound);
        resolve();
      });
    });
    await killed.kill('SIGKILL');
    expect((await killed.exited).signal).toBe('SIGKILL');
    await ended;
    expect(received).toBeGreaterThanOrEqual(64 * 1024);

    // 4. pa connect keeps running; a new connection goes through the live node.
    const after = await local(port);
    expect(await exchange(after, 'after the kill')).toBe('after the kill');
    await pa.waitFor(new RegExp(`#3 opened from \\S+ via ${escape(live.tunnelUrl)}`), 'stderr');
    after.destroy();
    expect(pa.child.exitCode).toBeNull();
    // Nothing more of the killed node's audit arrived while it was down.
    expect((await nodeRows()).filter((r) => !before.has(r.id))).toHaveLength(storedAtKill);

    // 5. Restarted on the same data directory (and reaching the control plane): its spool is shipped.
    const restarted = await sys.spawnNode('node-1');
    await waitFor(async () => {
      const s = await spool(restarted);
      return s.pending === 0 && s.queued === 0;
    }, 'the restarted node to ship its spool', 30_000);
    const added = (await nodeRows()).filter((r) => !before.has(r.id));
    // Exactly what was durable at the kill, once each: the events stored before the kill were resent and not duplicated.
    expect(added).toHaveLength(atKill.pending);
    const byTunnel = new Map<string, string[]>();
    for (const r of added) byTunnel.set(r.tunnel, [...(byTunnel.get(r.tunnel) ?? []), r.action].sort());
    expect([...byTunnel.values()].sort((a, b) => b.length - a.length)).toEqual([
      ['session.end', 'session.start', 'tunnel.open'],
      // The killed tunnel: opened and started, never ended (the process died).
      ['session.start', 'tunnel.open'],
    ]);
    const { rows: dups } = await sys.query<{ n: string }>(
      "SELECT count(*) AS n FROM (SELECT action, details->>'tunnelId' FROM audit_events WHERE node_id = 'node-1' AND action NOT LIKE 'node.%' GROUP BY 1, 2 HAVING count(*) > 1) d",
    );
    expect(Number(dups[0]?.n)).toBe(0);
  }, 180_000);
});
