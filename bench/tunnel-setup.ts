/**
 * 2. Tunnel setup time: from the first byte of the connect to the first byte
 * back from the echo server, sequentially, one connection at a time.
 *
 *   direct   connect() → write 1 byte → read it back
 *   node     openTunnel() (TCP connect, HTTP Upgrade with the grant: signature,
 *            claims, revocation, rate limit, concurrency lease, audit
 *            tunnel.open fsync'd to the spool, 101) → node dials the echo
 *            server → write 1 byte → read it back
 *
 * The node runs twice: with its state in Redis (a key prefix of the bench's
 * own, deleted afterwards) and in process. The samples of the three paths are
 * interleaved, after a warm-up. The grant is reused for every tunnel, as
 * `pa connect` reuses it for every local connection.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { openTunnel } from '../packages/tunnel/src/index';
import type { BenchConfig } from './config';
import { errText, quantile, round, startChild, table, type BenchChild, type BenchContext, type StepResult } from './lib';
import type { NodeInfo } from './node-host';
import { deleteKeys, redisReachable } from './redis';

const firstByte = async (s: Socket): Promise<void> => {
  s.on('error', () => undefined);
  const got = once(s, 'data');
  s.write('x');
  await got;
  s.destroy();
};

const direct = async (port: number): Promise<number> => {
  const t0 = performance.now();
  const s = connect({ port, host: '127.0.0.1' });
  s.setNoDelay(true);
  await once(s, 'connect');
  await firstByte(s);
  return performance.now() - t0;
};

const viaNode = async (url: string, grant: string): Promise<number> => {
  const t0 = performance.now();
  const { socket } = await openTunnel({ url, grant, timeoutMs: 10_000 });
  await firstByte(socket);
  return performance.now() - t0;
};

interface Variant {
  name: string;
  /** The node's counters, for node variants. */
  metrics?: () => Promise<Record<string, number>>;
  admissionMs?: number | null;
  sample(): Promise<number>;
  times: number[];
  errors: number;
  lastError: string | null;
}

export const runSetup = async (cfg: BenchConfig, ctx: BenchContext): Promise<StepResult> => {
  const notes: string[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  const variants: Variant[] = [{ name: 'direct TCP connect', sample: () => direct(ctx.servers.echo), times: [], errors: 0, lastError: null }];
  const startNodeVariant = async (label: string, redis: { url: string; prefix: string } | null): Promise<void> => {
    const node: BenchChild = await startChild('node', `${ctx.logDir}/node-setup-${label}.log`);
    cleanups.push(() => node.stop());
    const info = await node.call<NodeInfo>('start', { redis });
    const grant = await node.call<string>('sign', { protocol: 'tcp', host: '127.0.0.1', port: ctx.servers.echo });
    variants.push({
      name: `data-plane node, ${label} state`,
      sample: () => viaNode(info.tunnelUrl, grant),
      metrics: () => node.call<Record<string, number>>('metrics'),
      times: [],
      errors: 0,
      lastError: null,
    });
  };
  let prefix: string | null = null;
  try {
    if (cfg.redisUrl && (await redisReachable(cfg.redisUrl))) {
      prefix = `pabench:${randomBytes(5).toString('hex')}:`;
      await startNodeVariant('Redis', { url: cfg.redisUrl, prefix });
    } else notes.push(`Redis not reachable at ${cfg.redisUrl ?? '(BENCH_REDIS_URL=off)'}: the Redis-state variant is skipped`);
    await startNodeVariant('in-process', null);

    const warm = Math.min(50, Math.ceil(cfg.setup.samples / 5));
    const snapshots = new Map<Variant, Record<string, number>>();
    for (let i = 0; i < warm + cfg.setup.samples; i += 1) {
      if (i === warm) for (const v of variants) if (v.metrics) snapshots.set(v, await v.metrics());
      for (const v of variants) {
        try {
          const ms = await v.sample();
          if (i >= warm) v.times.push(ms);
        } catch (err) {
          v.errors += 1;
          v.lastError = errText(err);
        }
      }
    }
    // The node's own admission time (pa_tunnel_handshake_seconds: Upgrade received → 101 sent), over the measured samples.
    for (const v of variants) {
      const a = snapshots.get(v);
      const b = v.metrics ? await v.metrics() : undefined;
      if (!a || !b) continue;
      const n = (b.pa_tunnel_handshake_seconds_count ?? 0) - (a.pa_tunnel_handshake_seconds_count ?? 0);
      const sum = (b.pa_tunnel_handshake_seconds_sum ?? 0) - (a.pa_tunnel_handshake_seconds_sum ?? 0);
      v.admissionMs = n > 0 ? (sum / n) * 1000 : null;
    }
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    if (prefix && cfg.redisUrl) {
      const n = await deleteKeys(cfg.redisUrl, prefix).catch((err: unknown) => {
        notes.push(`Redis cleanup of ${prefix}* failed: ${errText(err)}`);
        return 0;
      });
      notes.push(`Redis keys under ${prefix} deleted afterwards: ${n}`);
    }
  }
  const base = variants[0] as Variant;
  const sorted = (v: Variant): number[] => [...v.times].sort((a, b) => a - b);
  const bp50 = quantile(sorted(base), 0.5);
  const bp99 = quantile(sorted(base), 0.99);
  const rows = variants.map((v) => {
    const s = sorted(v);
    const p50 = quantile(s, 0.5);
    const p99 = quantile(s, 0.99);
    return {
      path: v.name,
      samples: s.length,
      p50ms: round(p50, 3),
      p90ms: round(quantile(s, 0.9), 3),
      p99ms: round(p99, 3),
      addedP50ms: v === base ? null : round(p50 - bp50, 3),
      addedP99ms: v === base ? null : round(p99 - bp99, 3),
      nodeAdmissionMeanMs: v.admissionMs == null ? null : round(v.admissionMs, 3),
      errors: v.errors,
      lastError: v.lastError,
    };
  });
  for (const v of variants) if (v.errors) notes.push(`${v.name}: ${v.errors} errors (last: ${v.lastError})`);
  const f = (n: number | null): string => (n === null || !Number.isFinite(n) ? '-' : n.toFixed(2));
  const text = table(
    ['path', 'samples', 'p50 ms', 'p90 ms', 'p99 ms', '+p50 ms', '+p99 ms', 'node admission mean ms'],
    rows.map((r) => [r.path, String(r.samples), f(r.p50ms), f(r.p90ms), f(r.p99ms), f(r.addedP50ms), f(r.addedP99ms), f(r.nodeAdmissionMeanMs)]),
  );
  const goals = rows
    .filter((r) => r.addedP50ms !== null)
    .map((r) => ({ name: `Tunnel setup: added p50, ${r.path}`, target: '≤ 2 ms', measured: `${f(r.addedP50ms)} ms`, met: r.samples > 0 ? (r.addedP50ms as number) <= 2 : null }));
  notes.push('open-to-first-byte; +p50/+p99 = node minus direct at the same quantile; node admission = the node\'s pa_tunnel_handshake_seconds (Upgrade received → 101 written: grant, state checks, audit tunnel.open durable), mean over the samples');
  return { step: 'setup', title: '2. Tunnel setup time', table: text, rows, notes, goals };
};
