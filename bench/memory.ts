/**
 * 3. Memory per idle tunnel: the node runs in its own process (started with
 * --expose-gc, in-process state); it reports process.memoryUsage() over IPC
 * after a forced GC. After a warm-up (tunnels opened and closed), N tunnels
 * are opened to the echo server (each carries one byte each way, so its
 * session runs) and left idle; the growth of RSS and heap over N is the cost
 * of one idle tunnel on the node: the client-side socket, the upstream socket,
 * the session, its timers and audit state. Kernel socket buffers are not in
 * RSS. Then all are closed, to see the memory come back.
 */
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { openTunnel } from '../packages/tunnel/src/index';
import type { BenchConfig } from './config';
import { errText, round, sleep, startChild, table, type BenchContext, type StepResult } from './lib';
import type { NodeInfo, NodeMemory } from './node-host';

const KiB = 1024;
const MiB = 1024 * 1024;

export const runMemory = async (cfg: BenchConfig, ctx: BenchContext): Promise<StepResult> => {
  const notes: string[] = [];
  const node = await startChild('node', `${ctx.logDir}/node-memory.log`, ['--expose-gc']);
  const open: Socket[] = [];
  try {
    const info = await node.call<NodeInfo>('start', { redis: null });
    const grant = await node.call<string>('sign', { protocol: 'tcp', host: '127.0.0.1', port: ctx.servers.echo, maxConnections: 10_000 });
    const openOne = async (): Promise<Socket> => {
      const { socket } = await openTunnel({ url: info.tunnelUrl, grant, timeoutMs: 30_000 });
      socket.on('error', () => undefined);
      const echoed = once(socket, 'data');
      socket.write('x');
      await echoed;
      return socket;
    };
    const waitLive = async (n: number): Promise<void> => {
      const end = Date.now() + 30_000;
      while ((await node.call<number>('live')) !== n) {
        if (Date.now() > end) throw new Error(`the node did not reach ${n} live tunnels`);
        await sleep(50);
      }
    };
    const openMany = async (n: number, into: Socket[]): Promise<number> => {
      let failures = 0;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < n) {
          next += 1;
          try {
            into.push(await openOne());
          } catch (err) {
            failures += 1;
            if (failures === 1) notes.push(`opening a tunnel failed: ${errText(err)}`);
          }
        }
      };
      await Promise.all(Array.from({ length: 32 }, worker));
      return failures;
    };
    // Warm-up: the code paths and pools the tunnels use, then back to idle.
    const warm: Socket[] = [];
    await openMany(Math.min(200, cfg.memory.tunnels), warm);
    for (const s of warm) s.destroy();
    await waitLive(0);
    await sleep(200);
    const before = await node.call<NodeMemory>('memory');
    const failures = await openMany(cfg.memory.tunnels, open);
    await waitLive(open.length);
    await sleep(500);
    const after = await node.call<NodeMemory>('memory');
    for (const s of open) s.destroy();
    await waitLive(0);
    await sleep(500);
    const closed = await node.call<NodeMemory>('memory');
    const n = open.length;
    const per = (k: keyof NodeMemory): number => (n ? (after[k] - before[k]) / n / KiB : Number.NaN);
    const rows = [
      { metric: 'rss', beforeMiB: round(before.rss / MiB, 1), withTunnelsMiB: round(after.rss / MiB, 1), afterCloseMiB: round(closed.rss / MiB, 1), perTunnelKiB: round(per('rss'), 1) },
      { metric: 'heapUsed', beforeMiB: round(before.heapUsed / MiB, 1), withTunnelsMiB: round(after.heapUsed / MiB, 1), afterCloseMiB: round(closed.heapUsed / MiB, 1), perTunnelKiB: round(per('heapUsed'), 1) },
      { metric: 'external + arrayBuffers', beforeMiB: round((before.external + before.arrayBuffers) / MiB, 1), withTunnelsMiB: round((after.external + after.arrayBuffers) / MiB, 1), afterCloseMiB: round((closed.external + closed.arrayBuffers) / MiB, 1), perTunnelKiB: round(per('external') + per('arrayBuffers'), 1) },
    ];
    const text = table(
      ['node process', 'idle MiB', `${n} tunnels MiB`, 'after close MiB', 'KiB / tunnel'],
      rows.map((r) => [r.metric, r.beforeMiB.toFixed(1), r.withTunnelsMiB.toFixed(1), r.afterCloseMiB.toFixed(1), r.perTunnelKiB.toFixed(1)]),
    );
    if (failures) notes.push(`${failures} of ${cfg.memory.tunnels} tunnels failed to open`);
    notes.push(`N = ${n} idle tcp tunnels (each: the tunnel socket and an upstream socket on the node); in-process state; after a forced GC`);
    const rss = rows[0]?.perTunnelKiB ?? Number.NaN;
    return {
      step: 'memory',
      title: '3. Memory per idle tunnel',
      table: text,
      rows: rows.map((r) => ({ ...r, tunnels: n })),
      notes,
      goals: [{ name: 'Memory per idle tunnel (node RSS)', target: '≤ 64 KiB', measured: `${rss.toFixed(1)} KiB`, met: Number.isFinite(rss) ? rss <= 64 : null }],
    };
  } finally {
    for (const s of open) s.destroy();
    await node.stop().catch(() => undefined);
  }
};
