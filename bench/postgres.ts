/**
 * 5. PostgreSQL: pgbench select-only (-S, scale 1, in a database of the
 * bench's own, dropped afterwards) with 1 and 8 clients in the simple,
 * extended and prepared query modes:
 *
 *   direct                       pgbench ──▶ PostgreSQL
 *   pgbouncer (session)          pgbench ──▶ pgbouncer ──▶ PostgreSQL
 *   pa connect → node (tcp)      pgbench ──▶ local listener ══tunnel══▶ node, tcp grant ──▶ PostgreSQL
 *   pa connect → node (postgres) pgbench ──▶ local listener ══tunnel══▶ node, postgres grant: startup
 *                                answered by the proxy, backend login with the grant's credential,
 *                                every statement policy-checked and audited ──▶ PostgreSQL
 *
 * The last row needs the PostgreSQL handler in the registry.
 */
import { randomBytes } from 'node:crypto';
import type { BenchConfig } from './config';
import { errText, pct, round, run, startChild, table, type BenchContext, type StepResult } from './lib';
import { MISSING, startPgbouncer, type Tools } from './peers';
import type { NodeInfo } from './node-host';
import { fsyncNote, startNodes, type LoadPath, type RunningNodeChild } from './node-paths';

const MODES = ['simple', 'extended', 'prepared'] as const;
const CLIENTS = [1, 8] as const;

interface PgbenchResult {
  tps: number;
  latencyMs: number | null;
  failed: number;
}

export const parsePgbench = (text: string): PgbenchResult => {
  const tps = /tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/.exec(text) ?? /tps = ([\d.]+)/.exec(text);
  if (!tps) throw new Error(`pgbench printed no tps: ${text.trim().split('\n').slice(-3).join(' | ')}`);
  const lat = /latency average = ([\d.]+) ms/.exec(text);
  const failed = /number of failed transactions: (\d+)/.exec(text);
  return { tps: Number(tps[1]), latencyMs: lat ? Number(lat[1]) : null, failed: failed ? Number(failed[1]) : 0 };
};

export const runPostgres = async (cfg: BenchConfig, ctx: BenchContext, tools: Tools): Promise<StepResult> => {
  const title = '5. PostgreSQL (pgbench select-only)';
  const skip = (why: string): StepResult => ({ step: 'postgres', title, table: why, rows: [], notes: [why], goals: [] });
  if (!cfg.pg.conn) return skip('BENCH_PG=off: skipped');
  if (!tools.pgbench || !tools.psql) return skip(`${!tools.pgbench ? 'pgbench' : 'psql'} not installed (apt-get install -y postgresql-client); skipped`);
  const pgbench = tools.pgbench;
  const psql = tools.psql;
  const conn = cfg.pg.conn;
  const host = conn.host ?? '127.0.0.1';
  const port = Number(conn.port ?? 5432);
  const user = conn.user ?? 'postgres';
  const connStr = (db: string, h = host, p = port): string => [`host=${h}`, `port=${p}`, `user=${user}`, `dbname=${db}`, ...(conn.password ? [`password=${conn.password}`] : []), 'sslmode=disable'].join(' ');
  const probe = await run(psql, ['-X', '-q', '-A', '-t', '-c', 'select 1', connStr(conn.dbname ?? 'postgres')], 10_000);
  if (probe.code !== 0) return skip(`PostgreSQL not reachable at ${host}:${port} as ${user}: ${(probe.stderr || probe.stdout).trim().split('\n')[0] ?? ''}; skipped`);

  const notes: string[] = [];
  const db = `pa_bench_${randomBytes(4).toString('hex')}`;
  const admin = connStr(conn.dbname ?? 'postgres');
  const cleanups: Array<() => Promise<void>> = [];
  const sql = async (text: string): Promise<void> => {
    const r = await run(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', text, admin], 60_000);
    if (r.code !== 0) throw new Error(`psql: ${r.stderr.trim()}`);
  };
  try {
    await sql(`CREATE DATABASE ${db}`);
    cleanups.push(async () => {
      await sql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch((err: unknown) => notes.push(`could not drop ${db}: ${errText(err)}`));
    });
    const init = await run(pgbench, ['-i', '-q', '-s', '1', connStr(db)], 120_000);
    if (init.code !== 0) throw new Error(`pgbench -i: ${init.stderr.trim().split('\n').slice(-2).join(' | ')}`);

    const paths: LoadPath[] = [{ name: 'direct', port }];
    if (host !== '127.0.0.1' && host !== 'localhost') notes.push(`PostgreSQL at ${host}: not on loopback`);
    if (tools.pgbouncer) {
      try {
        const pb = await startPgbouncer(tools.pgbouncer, { ...conn, host, port: String(port), user }, db, ctx.logDir);
        cleanups.push(() => pb.stop());
        paths.push({ name: 'pgbouncer (session)', port: pb.ports.pg as number });
      } catch (err) {
        paths.push({ name: 'pgbouncer (session)', port: null, skipped: `did not start: ${errText(err)}` });
      }
    } else paths.push({ name: 'pgbouncer (session)', port: null, skipped: MISSING('pgbouncer') });

    const set = await startNodes(cfg, ctx, 'postgres');
    cleanups.push(async () => {
      notes.push(...(await set.stop()));
    });
    const target = { host, port, maxConnections: 100 };
    const pgSpec = { protocol: 'postgres' as const, ...target, database: db, credentials: { kind: 'password' as const, username: user, password: conn.password ?? 'unused-trust-auth' } };
    const first = set.nodes[0] as RunningNodeChild;
    paths.push(await set.path(first, { protocol: 'tcp', ...target }, `pa connect → node (tcp grant, ${first.label} state)`));
    for (const n of set.nodes) paths.push(await set.path(n, pgSpec, `pa connect → node (postgres grant, ${n.label} state)`));
    // The node hop on its own: pgbench straight to a node's direct PostgreSQL listener (TLS, the grant as the password).
    try {
      const direct = await startChild('node', `${ctx.logDir}/node-postgres-direct.log`);
      cleanups.push(() => direct.stop());
      const info = await direct.call<NodeInfo>('start', { redis: null, postgresDirect: true });
      const token = await direct.call<string>('sign', pgSpec);
      const address = info.postgresDirect as string;
      const directPort = Number(address.slice(address.lastIndexOf(':') + 1));
      paths.push({ name: 'node direct, TLS (postgres grant, in-process state)', port: directPort, conninfo: [`host=127.0.0.1`, `port=${directPort}`, `user=${user}`, `dbname=${db}`, `password=${token}`, 'sslmode=require'].join(' ') });
    } catch (err) {
      paths.push({ name: 'node direct, TLS (postgres grant, in-process state)', port: null, skipped: `did not start: ${errText(err)}` });
    }

    const results = new Map<string, PgbenchResult>();
    const fsyncs: string[] = [];
    const key = (path: string, mode: string, c: number): string => `${path}|${mode}|${c}`;
    /** `extra`: `-C` (a new connection per transaction), or `write` (the default TPC-B-like mix instead of -S). */
    const bench = async (p: LoadPath, mode: string, c: number, seconds: number, extra: 'connect' | 'write' | null = null): Promise<PgbenchResult> => {
      const script = extra === 'write' ? [] : ['-S'];
      const target = p.conninfo ?? (p.name === 'direct' ? connStr(db) : connStr(db, '127.0.0.1', p.port as number));
      const args = ['-n', ...script, ...(extra === 'connect' ? ['-C'] : []), '-M', mode, '-c', String(c), '-j', String(Math.min(c, 2)), '-T', String(seconds), target];
      const r = await run(pgbench, args, seconds * 1000 + 30_000);
      if (r.timedOut) throw new Error('pgbench did not finish in time');
      if (r.code !== 0 && !/tps = /.test(r.stdout)) throw new Error((r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | '));
      return parsePgbench(r.stdout);
    };
    for (const p of paths) {
      if (p.port === null) continue;
      try {
        await bench(p, 'prepared', 2, 1); // warm-up
        for (const mode of MODES) {
          for (const c of CLIENTS) {
            const m0 = (await p.metrics?.().catch(() => null)) ?? null;
            const r = await bench(p, mode, c, cfg.pg.seconds);
            results.set(key(p.name, mode, c), r);
            const m1 = (await p.metrics?.().catch(() => null)) ?? null;
            const fs = p.name.includes('postgres grant') ? fsyncNote(m0, m1, Math.round(r.tps * cfg.pg.seconds), 'transactions') : null;
            if (fs) fsyncs.push(`${mode} c${c}: ${fs}`);
            if (r.failed) notes.push(`${p.name} ${mode} c${c}: ${r.failed} failed transactions`);
          }
        }
        // Connection setup (connect + authenticate, one select each: pgbench -C) and a simple-protocol write mix.
        results.set(key(p.name, 'connect', 1), await bench(p, 'simple', 1, cfg.pg.seconds, 'connect'));
        results.set(key(p.name, 'write', 8), await bench(p, 'simple', 8, cfg.pg.seconds, 'write'));
      } catch (err) {
        p.skipped = `failed: ${errText(err)}`;
      }
      const extra = await p.after?.().catch(() => null);
      if (extra) notes.push(`${p.name}: ${extra}`);
      if (fsyncs.length) notes.push(`${p.name}: ${fsyncs.splice(0).join('; ')}`);
    }

    const rows: Array<Record<string, string | number | null>> = [];
    for (const p of paths) {
      for (const mode of MODES) {
        for (const c of CLIENTS) {
          const r = results.get(key(p.name, mode, c));
          const d = results.get(key('direct', mode, c));
          rows.push({
            path: p.name,
            mode,
            clients: c,
            tps: r ? Math.round(r.tps) : null,
            latencyMs: r?.latencyMs ?? null,
            ratio: r && d ? round(r.tps / d.tps, 3) : null,
            note: p.skipped ?? null,
          });
        }
      }
    }
    // One line per path: TPS (ratio) for each mode × clients.
    const cols = MODES.flatMap((m) => CLIENTS.map((c) => `${m} c${c}`));
    const text = table(
      ['path', ...cols.map((c) => `${c} TPS`), 'note'],
      paths.map((p) => [
        p.name,
        ...MODES.flatMap((m) =>
          CLIENTS.map((c) => {
            const r = rows.find((x) => x.path === p.name && x.mode === m && x.clients === c);
            return r?.tps == null ? '-' : `${r.tps} (${pct(r.ratio as number | null)})`;
          }),
        ),
        p.skipped ?? '',
      ]),
    );
    const lat = table(
      ['latency avg ms', ...cols],
      paths
        .filter((p) => !p.skipped)
        .map((p) => [
          p.name,
          ...MODES.flatMap((m) =>
            CLIENTS.map((c) => {
              const r = rows.find((x) => x.path === p.name && x.mode === m && x.clients === c);
              return r?.latencyMs == null ? '-' : (r.latencyMs as number).toFixed(3);
            }),
          ),
        ]),
    );
    const extraRows = paths.map((p) => {
      const cell = (k: string, c: number): string => {
        const r = results.get(key(p.name, k, c));
        const d = results.get(key('direct', k, c));
        return r ? `${Math.round(r.tps)} (${d ? pct(r.tps / d.tps) : '-'})` : '-';
      };
      const conn = results.get(key(p.name, 'connect', 1));
      return [p.name, cell('connect', 1), conn?.latencyMs != null ? conn.latencyMs.toFixed(3) : '-', cell('write', 8)];
    });
    const extras = table(['path', 'connect+select c1 (-C) TPS', 'ms per connection', 'write mix c8 (simple) TPS'], extraRows);
    for (const p of paths) {
      for (const [k, c] of [['connect', 1], ['write', 8]] as const) {
        const r = results.get(key(p.name, k, c));
        const d = results.get(key('direct', k, c));
        if (r) rows.push({ path: p.name, mode: k === 'connect' ? 'simple -C' : 'simple tpcb-like', clients: c, tps: Math.round(r.tps), latencyMs: r.latencyMs, ratio: d ? round(r.tps / d.tps, 3) : null, note: p.skipped ?? null });
      }
    }
    notes.push(`pgbench -n -S -T ${cfg.pg.seconds} -j min(c,2), scale 1, database ${db} (dropped afterwards); (n%) = TPS vs direct; -C: a new connection (connect + authenticate) for every transaction; write mix: pgbench's TPC-B-like script, simple protocol; rate-limit windows raised so they never bind (each check still runs)`);
    const bouncer = rows.filter((r) => r.path === 'pgbouncer (session)' && r.ratio !== null && (MODES as readonly unknown[]).includes(r.mode));
    if (bouncer.length) notes.push(`pgbouncer (session) mean select-only TPS ratio: ${pct(bouncer.reduce((n, r) => n + (r.ratio as number), 0) / bouncer.length)}`);
    return {
      step: 'postgres',
      title,
      table: `${text}\n\n${lat}\n\n${extras}`,
      rows,
      notes,
      goals: paths
        .filter((p) => p.name.includes('(postgres grant'))
        .flatMap((p) => {
          const ratio = (mode: string, c: number): number | null => {
            const r = results.get(key(p.name, mode, c));
            const d = results.get(key('direct', mode, c));
            return r && d ? r.tps / d.tps : null;
          };
          const goal = (name: string, min: number, measured: number | null) => ({ name: `PostgreSQL: ${p.name}, ${name}`, target: `≥ ${pct(min)}`, measured: measured === null ? (p.skipped ?? '-') : pct(measured), met: measured === null ? null : measured >= min });
          const c1 = (mode: string): number | null => {
            const r = results.get(key(p.name, mode, 1));
            const d = results.get(key('direct', mode, 1));
            return r?.latencyMs != null && d?.latencyMs != null ? (r.latencyMs - d.latencyMs) * 1000 : null;
          };
          const added = MODES.map(c1).filter((v): v is number => v !== null);
          const worst = added.length ? Math.max(...added) : null;
          const setup = ratio('connect', 1);
          return [
            goal('select-only simple c8 TPS vs direct', 0.7, ratio('simple', 8)),
            goal('select-only extended c8 TPS vs direct', 0.65, ratio('extended', 8)),
            goal('select-only prepared c8 TPS vs direct', 0.6, ratio('prepared', 8)),
            { name: `PostgreSQL: ${p.name}, added latency per query at one client (worst mode)`, target: '≤ 40 µs', measured: worst === null ? '-' : `${Math.round(worst)} µs`, met: worst === null ? null : worst <= 40 },
            { name: `PostgreSQL: ${p.name}, connection setup (pgbench -C) TPS vs direct`, target: '≥ 95%', measured: setup === null ? '-' : pct(setup), met: setup === null ? null : setup >= 0.95 },
          ];
        }),
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
};
