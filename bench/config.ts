/**
 * Benchmark settings: the only file of bench/ that reads the environment.
 *
 *   BENCH_ONLY=tcp,setup,memory,http,postgres,policy   run only these steps (default: all)
 *   BENCH_QUICK=1                                      short runs (smoke test, figures not meaningful)
 *   BENCH_TCP_SECONDS, BENCH_TCP_ROUNDS, BENCH_TCP_MAX_MIB
 *   BENCH_SETUP_SAMPLES, BENCH_IDLE_TUNNELS
 *   BENCH_HTTP_SECONDS, BENCH_HTTP_CONNECTIONS
 *   BENCH_PG_SECONDS
 *   BENCH_REDIS_URL (default redis://127.0.0.1:6379; "off" skips the Redis variants)
 *   BENCH_PG (default host=127.0.0.1 port=5432 user=postgres; libpq key=value, "off" skips PostgreSQL)
 *   BENCH_OUT (default bench/results/latest.json)
 */
import { resolve } from 'node:path';

export const STEPS = ['tcp', 'setup', 'memory', 'http', 'postgres', 'policy'] as const;
export type Step = (typeof STEPS)[number];

const env = process.env;

const num = (name: string, fallback: number, quick: number): number => {
  const raw = env[name];
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (Number.isFinite(n) && n > 0) return n;
    throw new Error(`${name} must be a positive number, not ${raw}`);
  }
  return env.BENCH_QUICK === '1' ? quick : fallback;
};

const parsePg = (raw: string): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const part of raw.trim().split(/\s+/)) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
};

export interface BenchConfig {
  readonly steps: ReadonlySet<Step>;
  readonly quick: boolean;
  readonly tcp: { readonly seconds: number; readonly rounds: number; readonly maxBytes: number };
  readonly setup: { readonly samples: number };
  readonly memory: { readonly tunnels: number };
  readonly http: { readonly seconds: number; readonly connections: number };
  readonly pg: { readonly seconds: number; readonly conn: Readonly<Record<string, string>> | null };
  readonly redisUrl: string | null;
  readonly out: string;
  /** Directories searched for the peers' and tools' executables. */
  readonly pathDirs: readonly string[];
}

export const loadBenchConfig = (): BenchConfig => {
  const only = (env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of only) {
    if (!(STEPS as readonly string[]).includes(s)) throw new Error(`BENCH_ONLY: unknown step ${s} (steps: ${STEPS.join(', ')})`);
  }
  const redis = env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const pg = env.BENCH_PG ?? 'host=127.0.0.1 port=5432 user=postgres';
  const path = (env.PATH ?? '').split(':').filter(Boolean);
  for (const extra of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) if (!path.includes(extra)) path.push(extra);
  return {
    steps: new Set<Step>(only.length ? (only as Step[]) : STEPS),
    quick: env.BENCH_QUICK === '1',
    tcp: { seconds: num('BENCH_TCP_SECONDS', 1, 0.5), rounds: Math.round(num('BENCH_TCP_ROUNDS', 4, 1)), maxBytes: num('BENCH_TCP_MAX_MIB', 4096, 256) * 1024 * 1024 },
    setup: { samples: Math.round(num('BENCH_SETUP_SAMPLES', 300, 40)) },
    memory: { tunnels: Math.round(num('BENCH_IDLE_TUNNELS', 2000, 200)) },
    http: { seconds: num('BENCH_HTTP_SECONDS', 6, 1), connections: Math.round(num('BENCH_HTTP_CONNECTIONS', 64, 16)) },
    pg: { seconds: Math.round(num('BENCH_PG_SECONDS', 3, 1)), conn: pg === 'off' ? null : parsePg(pg) },
    redisUrl: redis === 'off' ? null : redis,
    out: resolve(env.BENCH_OUT ?? 'bench/results/latest.json'),
    pathDirs: path,
  };
};
