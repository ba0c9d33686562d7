/**
 * The data-plane paths of the HTTP and PostgreSQL steps: a node with its
 * state in Redis (when Redis answers; a key prefix of the bench's own, deleted
 * afterwards) and a node with in-process state, each reached through a
 * `pa connect`-style local listener (bench/relays.ts) holding one grant.
 */
import { randomBytes } from 'node:crypto';
import type { BenchConfig } from './config';
import { errText, startChild, type BenchChild, type BenchContext } from './lib';
import type { NodeInfo, SignRequest } from './node-host';
import { deleteKeys, redisReachable } from './redis';
import type { ConnectStats } from './relays';

export interface LoadPath {
  name: string;
  port: number | null;
  /** libpq conninfo to use instead of the default one for `port` (PostgreSQL step). */
  conninfo?: string;
  /** Why the path has no figures. */
  skipped?: string;
  /** Problems seen on the path, after its runs. */
  after?: () => Promise<string | null>;
  /** The node's counters (Prometheus names, summed over labels), for node paths. */
  metrics?: () => Promise<Record<string, number>>;
}

/** `fsyncs: N (X per fsync)` between two metric snapshots of a node, for `work` requests or transactions. */
export const fsyncNote = (before: Record<string, number> | null, after: Record<string, number> | null, work: number, unit: string): string | null => {
  if (!before || !after) return null;
  const f = (after.pa_audit_spool_fsyncs_total ?? 0) - (before.pa_audit_spool_fsyncs_total ?? 0);
  const refused = (after.pa_tunnels_refused_total ?? 0) - (before.pa_tunnels_refused_total ?? 0);
  return `audit fsyncs ${f}${f > 0 ? ` (${(work / f).toFixed(1)} ${unit} per fsync)` : ''}${refused > 0 ? `, ${refused} tunnels refused` : ''}`;
};

export interface RunningNodeChild {
  /** `Redis` or `in-process`. */
  label: string;
  info: NodeInfo;
  child: BenchChild;
}

export interface NodeSet {
  nodes: RunningNodeChild[];
  /** A local listener on `node` presenting a grant signed for `spec`; skipped when the node does not serve the protocol. */
  path(node: RunningNodeChild, spec: SignRequest, name: string): Promise<LoadPath>;
  /** Stops everything; returns notes (Redis cleanup). */
  stop(): Promise<string[]>;
}

export const startNodes = async (cfg: BenchConfig, ctx: BenchContext, step: string): Promise<NodeSet> => {
  const stops: Array<() => Promise<void>> = [];
  const nodes: RunningNodeChild[] = [];
  const notes: string[] = [];
  let prefix: string | null = null;
  const stop = async (): Promise<string[]> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    stops.length = 0;
    if (prefix && cfg.redisUrl) {
      const n = await deleteKeys(cfg.redisUrl, prefix).catch((err: unknown) => {
        notes.push(`Redis cleanup of ${prefix}* failed: ${errText(err)}`);
        return -1;
      });
      if (n >= 0) notes.push(`Redis keys under ${prefix} deleted afterwards: ${n}`);
      prefix = null;
    }
    return notes;
  };
  try {
    const start = async (label: string, redis: { url: string; prefix: string } | null): Promise<void> => {
      const child = await startChild('node', `${ctx.logDir}/node-${step}-${label}.log`);
      stops.push(() => child.stop());
      nodes.push({ label, info: await child.call<NodeInfo>('start', { redis }), child });
    };
    if (cfg.redisUrl && (await redisReachable(cfg.redisUrl))) {
      prefix = `pabench:${randomBytes(5).toString('hex')}:`;
      await start('Redis', { url: cfg.redisUrl, prefix });
    } else notes.push(`Redis not reachable at ${cfg.redisUrl ?? '(BENCH_REDIS_URL=off)'}: in-process state only`);
    await start('in-process', null);
    const connect = await startChild('connect', `${ctx.logDir}/connect-${step}.log`);
    stops.push(() => connect.stop());
    return {
      nodes,
      stop,
      path: async (node, spec, name) => {
        if (!node.info.protocols.includes(spec.protocol)) {
          return { name, port: null, skipped: `${spec.protocol} handler not registered (services/data-plane/src/protocols/registry.ts serves: ${node.info.protocols.join(', ')})` };
        }
        const grant = await node.child.call<string>('sign', spec);
        const { port } = await connect.call<{ port: number }>('start', { tunnelUrl: node.info.tunnelUrl, grant });
        return {
          name,
          port,
          metrics: () => node.child.call<Record<string, number>>('metrics'),
          after: async () => {
            const s = await connect.call<ConnectStats | null>('stats', { port });
            return s && s.failed ? `${s.failed} tunnels refused (last: ${s.lastError})` : null;
          },
        };
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
};
