/**
 * `pnpm bench`: the benchmark suite of the data-plane hop, each figure beside
 * a direct connection measured in the same run and beside the peers a user
 * would pick instead (haproxy, nginx, pgbouncer; wrk and pgbench as load).
 *
 *   1. TCP bulk throughput             bench/tcp.ts
 *   2. Tunnel setup time               bench/tunnel-setup.ts
 *   3. Memory per idle tunnel          bench/memory.ts
 *   4. HTTP requests/s and p99         bench/http.ts
 *   5. PostgreSQL (pgbench)            bench/postgres.ts
 *   6. Policy engine                   bench/policy.ts (packages/policy/bench/policy-bench.ts)
 *
 * Settings: bench/config.ts. Prints a summary and writes the JSON result file
 * (bench/results/latest.json unless BENCH_OUT says otherwise). Child
 * processes' logs go to a temp directory, named at the end.
 */
import { closeSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, hostname, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { loadBenchConfig, type Step } from './config';
import { errText, out, quantile, round, startChild, type BenchContext, type StepResult } from './lib';
import { runMemory } from './memory';
import { findTools, toolVersions } from './peers';
import { runHttp } from './http';
import { runPolicy } from './policy';
import { runPostgres } from './postgres';
import type { ServerPorts } from './servers';
import { runTcp } from './tcp';
import { runSetup } from './tunnel-setup';

/** p50 of a 256-byte append + fdatasync in `dir` (the node's audit spool pays one per decision batch). */
const fsyncP50 = (dir: string): number => {
  const d = mkdtempSync(join(dir, 'pa-bench-fsync-'));
  const fd = openSync(join(d, 'probe'), 'a');
  const buf = Buffer.alloc(256, 0x61);
  const times: number[] = [];
  try {
    for (let i = 0; i < 50; i += 1) {
      const t0 = performance.now();
      writeSync(fd, buf);
      fdatasyncSync(fd);
      times.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(d, { recursive: true, force: true });
  }
  return round(quantile(times.sort((a, b) => a - b), 0.5), 3);
};

const load1 = (): number => round(loadavg()[0] ?? 0, 2);

const cpuTimes = (): { busy: number; total: number } | null => {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
};

/** CPUs kept busy by other work over one second while the bench itself is idle (between steps); null off Linux. */
const foreignCpus = async (nproc: number): Promise<number | null> => {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, 1000));
  const b = cpuTimes();
  if (!a || !b || b.total === a.total) return null;
  return round(((b.busy - a.busy) / (b.total - a.total)) * nproc, 2);
};

const main = async (): Promise<void> => {
  const cfg = loadBenchConfig();
  const started = Date.now();
  const logDir = mkdtempSync(join(tmpdir(), 'pa-bench-logs-'));
  const tools = findTools(cfg.pathDirs);
  const machine = {
    date: new Date().toISOString(),
    host: hostname(),
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    tools: await toolVersions(tools),
    /** p50 ms of append + fdatasync in the temp directory, where the nodes keep their audit spool. */
    fsyncP50ms: fsyncP50(tmpdir()),
    loadAverageAtStart: load1(),
  };
  out(`Port Authorizing benchmarks — ${machine.date}`);
  out(`machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}${cfg.quick ? '  [BENCH_QUICK: figures not meaningful]' : ''}`);
  out(`disk: fsync p50 ${machine.fsyncP50ms} ms in ${tmpdir()} (audit spool); load average ${machine.loadAverageAtStart}`);
  out(`peers: ${Object.entries(machine.tools).map(([k, v]) => `${k} ${v ? 'yes' : 'MISSING'}`).join(', ')}`);
  out(`logs: ${logDir}`);
  out();

  const serversChild = await startChild('servers', join(logDir, 'servers.log'));
  const results: StepResult[] = [];
  try {
    const ports = await serversChild.call<ServerPorts>('start');
    const ctx: BenchContext = { logDir, servers: ports };
    const steps: Array<[Step, string, () => Promise<StepResult>]> = [
      ['tcp', '1. TCP bulk throughput', () => runTcp(cfg, ctx, tools)],
      ['setup', '2. Tunnel setup time', () => runSetup(cfg, ctx)],
      ['memory', '3. Memory per idle tunnel', () => runMemory(cfg, ctx)],
      ['http', '4. HTTP keep-alive requests/s', () => runHttp(cfg, ctx, tools)],
      ['postgres', '5. PostgreSQL (pgbench select-only)', () => runPostgres(cfg, ctx, tools)],
      ['policy', '6. Policy engine', () => runPolicy()],
    ];
    for (const [step, title, fn] of steps) {
      if (!cfg.steps.has(step)) continue;
      out(`== ${title} …`);
      const foreign = await foreignCpus(machine.nproc);
      const fsyncBefore = fsyncP50(tmpdir());
      const t0 = Date.now();
      let r: StepResult;
      try {
        r = await fn();
      } catch (err) {
        r = { step, title, table: `failed: ${errText(err)}`, rows: [], notes: [`failed: ${errText(err)}`], goals: [] };
      }
      r.seconds = Math.round((Date.now() - t0) / 1000);
      r.foreignCpusBefore = foreign;
      r.fsyncP50msBefore = fsyncBefore;
      if (foreign !== null && foreign > 0.2) r.notes.push(`other work kept ${foreign} of ${machine.nproc} CPUs busy just before this step: figures unreliable`);
      results.push(r);
      out(r.table);
      for (const n of r.notes) out(`  note: ${n}`);
      out(`  (${r.seconds} s; just before: other work ${foreign ?? '?'} CPUs busy, fsync p50 ${fsyncBefore} ms)`);
      out();
    }
  } finally {
    await serversChild.stop().catch(() => undefined);
  }

  out('== Goals');
  const goals = results.flatMap((r) => r.goals);
  for (const g of goals) out(`  [${g.met === null ? ' ?  ' : g.met ? ' ok ' : 'MISS'}] ${g.name}: ${g.measured || '-'} (goal ${g.target})`);
  const total = Math.round((Date.now() - started) / 1000);
  out(`\ntotal ${total} s`);

  mkdirSync(dirname(cfg.out), { recursive: true });
  writeFileSync(cfg.out, `${JSON.stringify({ machine, quick: cfg.quick, totalSeconds: total, logDir, results }, null, 2)}\n`);
  out(`results: ${cfg.out}`);
};

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
