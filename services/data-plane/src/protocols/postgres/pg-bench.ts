/**
 * Throughput of the postgres handler: pgbench select-only (-S) in simple,
 * extended and prepared modes at 1 and 8 clients, directly against
 * PostgreSQL, through the handler, and (with --pgbouncer, when installed)
 * through pgbouncer in session mode for reference.
 *
 *   npx tsx services/data-plane/src/protocols/postgres/pg-bench.ts postgres://postgres@127.0.0.1:5432/pa_bench \
 *     [--duration 10] [--scale 1] [--clients 1,8] [--modes simple,extended,prepared] \
 *     [--audit written,durable,ordered,none] [--window-ms 2] [--no-init] [--pgbouncer]
 *
 * The handler runs in this process with a real session context: a signed
 * grant, a policy compiled by the real engine (allow all but DDL), the
 * statement rate limit off, and the audit trail as chosen:
 * - `written`: a real on-disk spool with `written` durability (the node's
 *   default): every statement waits for its decision record to be written to
 *   the spool file; the fdatasync follows in groups;
 * - `durable`: the same with `durable` durability: every statement waits for
 *   its decision record to be fsynced;
 * - `ordered`: the same spool, statements wait only for admission
 *   (`auditDurability: 'ordered'`);
 * - `none`: a sink that records nothing, to measure the handler's own cost.
 *   Not a production configuration.
 * pgbench -i runs directly against the database (it needs DDL).
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId, toAppError } from '@pa/kit';
import { AuditRecorder, AuditSpool } from '../../audit';
import { createSessionFixture, type SessionFixture } from '../../testing/session-fixture';
import { sessionAudit, type SessionContext } from '../handler';
import { createPostgresHandler } from './postgres-handler';

type AuditMode = 'written' | 'durable' | 'ordered' | 'none';

interface Options {
  url: URL;
  duration: number;
  scale: number;
  clients: number[];
  modes: string[];
  audit: AuditMode[];
  windowMs: number;
  init: boolean;
  pgbouncer: boolean;
}

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

const parseArgs = (argv: string[]): Options => {
  const url = argv.find((a) => /^postgres(ql)?:\/\//.test(a));
  if (!url) throw new Error('Usage: pg-bench.ts postgres://user[:password]@host:port/database [--duration 10] …');
  const value = (name: string, fallback: string): string => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] ? (argv[i + 1] as string) : fallback;
  };
  return {
    url: new URL(url),
    duration: Number(value('duration', '10')),
    scale: Number(value('scale', '1')),
    clients: value('clients', '1,8').split(',').map(Number),
    modes: value('modes', 'simple,extended,prepared').split(','),
    audit: value('audit', 'written,durable,ordered,none').split(',') as AuditMode[],
    windowMs: Number(value('window-ms', '2')),
    init: !argv.includes('--no-init'),
    pgbouncer: argv.includes('--pgbouncer'),
  };
};

const run = (cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });

/** libpq conninfo from the URL (pgbench takes it as its database name). */
const conninfo = (o: { host: string; port: number | string; user: string; password?: string; dbname: string }): string =>
  Object.entries(o)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}='${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`)
    .join(' ');

interface Measure {
  tps: number;
  latencyMs: number;
  /** CPU time of this process per statement while pgbench ran (the handler and its audit spool): user, system (syscalls, loopback TCP). */
  userUs: number;
  systemUs: number;
}

const pgbench = async (conn: string, mode: string, clients: number, duration: number): Promise<Measure> => {
  const cpu = process.cpuUsage();
  const r = await run('pgbench', ['-S', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(duration), '-n', conn]);
  const used = process.cpuUsage(cpu);
  const tps = /tps = ([0-9.]+)/.exec(r.stdout);
  const lat = /latency average = ([0-9.]+) ms/.exec(r.stdout);
  const done = /number of transactions actually processed: ([0-9]+)/.exec(r.stdout);
  if (r.code !== 0 || !tps || !lat || !done) throw new Error(`pgbench failed (${r.code}): ${r.stderr.slice(-500)}`);
  const n = Number(done[1]);
  return { tps: Number(tps[1]), latencyMs: Number(lat[1]), userUs: used.user / n, systemUs: used.system / n };
};

/** The handler on a local port, one session context per connection, audit as `mode`. */
const startHandler = async (
  fixture: SessionFixture,
  mode: AuditMode,
  recorder: AuditRecorder,
): Promise<{ port: number; close(): Promise<void> }> => {
  const handler = createPostgresHandler({ tuning: { auditDurability: mode === 'ordered' ? 'ordered' : 'durable' } });
  const sockets = new Set<Socket>();
  const noAudit: SessionContext['audit'] = { canAccept: () => true, decision: () => Promise.resolve(), outcome: () => Promise.resolve(true) };
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    const tunnelId = newId('tun');
    const ctx: SessionContext = {
      ...fixture.ctx,
      tunnelId,
      audit: mode === 'none' ? noAudit : sessionAudit(recorder, fixture.grant, 'postgres', tunnelId),
      consumeRequest: () => Promise.resolve({ allowed: true, source: 'local' }),
    };
    handler.setup(socket, ctx).then(
      (session) => session.run(),
      (err: unknown) => handler.sendError(socket, toAppError(err)),
    );
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
};

/** pgbouncer in session mode on a free port, if installed; null otherwise. */
const startPgbouncer = async (o: Options, dir: string): Promise<{ port: number; stop(): void } | null> => {
  const which = await run('sh', ['-c', 'command -v pgbouncer || ls /usr/sbin/pgbouncer']).catch(() => null);
  const bin = which?.stdout.trim().split('\n')[0];
  if (!bin) return null;
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await new Promise((r) => probe.once('listening', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const db = o.url.pathname.slice(1);
  const user = decodeURIComponent(o.url.username || 'postgres');
  const password = decodeURIComponent(o.url.password);
  writeFileSync(join(dir, 'users.txt'), `"${user}" "${password}"\n`);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `${db} = host=${o.url.hostname} port=${o.url.port || 5432} dbname=${db} user=${user}${password ? ` password=${password}` : ''}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      'pool_mode = session',
      'max_client_conn = 100',
      'default_pool_size = 20',
      'unix_socket_dir =',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
    ].join('\n'),
  );
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  // pgbouncer refuses to run as root: it switches to `postgres`, which must read its files and write its log.
  if (asRoot) chmodSync(dir, 0o777);
  const child = spawn(bin, [...(asRoot ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  if (child.exitCode !== null) return null;
  return { port, stop: () => child.kill('SIGTERM') };
};

const fmt = (n: number, digits = 0): string => n.toFixed(digits);

const main = async (): Promise<void> => {
  const o = parseArgs(process.argv.slice(2));
  const db = o.url.pathname.slice(1);
  const user = decodeURIComponent(o.url.username || 'postgres');
  const password = decodeURIComponent(o.url.password);
  const host = o.url.hostname;
  const port = Number(o.url.port || 5432);
  const direct = conninfo({ host, port, user, password, dbname: db });
  if (o.init) {
    const r = await run('pgbench', ['-i', '-q', '-s', String(o.scale), direct]);
    if (r.code !== 0) throw new Error(`pgbench -i failed: ${r.stderr}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'pa-pg-bench-'));
  const fixture = await createSessionFixture({
    protocol: 'postgres',
    host,
    port,
    database: db,
    credentials: { kind: 'password', username: user, password },
    policies: [{ name: 'bench', rules: [{ id: 'everything', effect: 'allow', type: 'all' }, { id: 'no-ddl', effect: 'deny', type: 'sql', kinds: ['ddl', 'truncate'] }] }],
    settings: { idleTimeoutMs: 600_000 },
  });
  const open = async (durability: 'written' | 'durable'): Promise<AuditSpool> =>
    AuditSpool.open({ dir: join(dir, `spool-${durability}`), groupCommitWindowMs: o.windowMs, capacityBytes: 4 * 1024 * 1024 * 1024, durability });
  const spools = { written: await open('written'), durable: await open('durable') };
  // Acknowledge what becomes durable, as the node's shipper would once the control plane has it.
  for (const spool of Object.values(spools)) {
    let draining = false;
    const drain = async (): Promise<void> => {
      if (draining) return;
      draining = true;
      try {
        for (let batch = await spool.readUnackedSpooled(1000); batch.length > 0; batch = await spool.readUnackedSpooled(1000)) await spool.ack(batch.map((e) => e.id));
      } finally {
        draining = false;
      }
    };
    spool.onDurable(() => void drain());
  }
  const recorders = { written: new AuditRecorder({ spool: spools.written, nodeId: 'bench' }), durable: new AuditRecorder({ spool: spools.durable, nodeId: 'bench' }) };
  const bouncer = o.pgbouncer ? await startPgbouncer(o, dir) : null;
  out(`pgbench -S, ${o.duration} s per run, scale ${o.scale}; audit spool group-commit window ${o.windowMs} ms; node ${process.version}`);
  out('| mode | clients | direct tps | pgbouncer tps (%) | audit | handler tps | % of direct | direct latency ms | handler latency ms | added µs/query | node CPU µs/stmt user+sys |');
  out('|---|---|---|---|---|---|---|---|---|---|---|');
  try {
    for (const mode of o.modes) {
      for (const clients of o.clients) {
        const d = await pgbench(direct, mode, clients, o.duration);
        let b = '–';
        if (bouncer) {
          const m = await pgbench(conninfo({ host: '127.0.0.1', port: bouncer.port, user, password, dbname: db }), mode, clients, o.duration);
          b = `${fmt(m.tps)} (${fmt((100 * m.tps) / d.tps)}%)`;
        }
        for (const audit of o.audit) {
          const h = await startHandler(fixture, audit, audit === 'written' ? recorders.written : recorders.durable);
          try {
            const m = await pgbench(conninfo({ host: '127.0.0.1', port: h.port, user: 'bench', dbname: db }), mode, clients, o.duration);
            out(`| ${mode} | ${clients} | ${fmt(d.tps)} | ${b} | ${audit} | ${fmt(m.tps)} | ${fmt((100 * m.tps) / d.tps)}% | ${fmt(d.latencyMs, 3)} | ${fmt(m.latencyMs, 3)} | ${fmt((m.latencyMs - d.latencyMs) * 1000)} | ${fmt(m.userUs)}+${fmt(m.systemUs)} |`);
          } finally {
            await h.close();
          }
        }
      }
    }
  } finally {
    bouncer?.stop();
    await spools.written.close();
    await spools.durable.close();
    await fixture.close();
    rmSync(dir, { recursive: true, force: true });
  }
};

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
