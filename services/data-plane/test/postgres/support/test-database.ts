import { spawn } from 'node:child_process';
import { createTestDatabase, testDatabaseUrl, type TestDatabase } from '@pa/testing';
import { withPg, type PgClient } from './node-postgres';

/**
 * A fresh database on the test server (TEST_DATABASE_URL) with the tables the
 * handler tests use: `accounts`, `t`, `audit_log`, `big` (a result of many
 * megabytes) and `secret.keys` (which every test policy denies).
 */
export interface AppDatabase {
  readonly db: TestDatabase;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Superuser login of the test server (what the proxy injects). */
  readonly user: string;
  readonly password: string;
  /** Runs `fn` on a direct (not proxied) connection. */
  direct<T>(fn: (c: PgClient) => Promise<T>): Promise<T>;
  drop(): Promise<void>;
}

export const SCHEMA_SQL = `
  CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL, balance int NOT NULL);
  INSERT INTO accounts SELECT g, 'name' || g, 100 FROM generate_series(1, 10) g;
  CREATE TABLE t (a int, b int);
  CREATE TABLE audit_log (msg text);
  CREATE SCHEMA secret;
  CREATE TABLE secret.keys (k text);
  INSERT INTO secret.keys VALUES ('s3cr3t');
  CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 100000) g;
`;

export const createAppDatabase = async (): Promise<AppDatabase> => {
  const db = await createTestDatabase();
  const u = new URL(db.url);
  const base = { host: u.hostname, port: Number(u.port || 5432), user: decodeURIComponent(u.username || 'postgres'), password: decodeURIComponent(u.password), database: db.name };
  await withPg(base, async (c) => {
    await c.query(SCHEMA_SQL);
  });
  return {
    db,
    name: db.name,
    host: base.host,
    port: base.port,
    user: base.user,
    password: base.password,
    direct: (fn) => withPg(base, fn),
    drop: () => db.drop(),
  };
};

/** Admin URL of the test server. */
export const adminUrl = (): string => testDatabaseUrl();

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command without blocking the event loop (the proxy under test runs in this process). */
export const run = (cmd: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> =>
  new Promise((resolve, reject) => {
    // Connection settings go in conninfo strings, never through the environment.
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });

/** A libpq conninfo string (values quoted). */
export const conninfo = (o: Record<string, string | number>): string =>
  Object.entries(o)
    .map(([k, v]) => `${k}='${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`)
    .join(' ');

/** psql through the proxy on `port` (no psqlrc, sslmode=prefer so the SSLRequest path runs); `extra` adds conninfo settings. */
export const psql = (port: number, database: string, args: readonly string[], options: { input?: string; extra?: Record<string, string> } = {}): Promise<RunResult> =>
  run('psql', ['-X', '-q', '-d', conninfo({ host: '127.0.0.1', port, user: 'tester', dbname: database, sslmode: 'prefer', connect_timeout: 10, application_name: 'pa-test', ...options.extra }), ...args], options);

/** Whether exactly one statement containing `marker` is running on the backend now. */
export const isRunning = async (app: AppDatabase, marker: string): Promise<boolean> =>
  app.direct(async (d) => (await d.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()", [marker])).rows[0]?.n === 1);

/** Waits until a statement containing `marker` runs on the backend. */
export const waitForActivity = async (app: AppDatabase, marker: string): Promise<void> => {
  for (let i = 0; i < 200; i += 1) {
    if (await isRunning(app, marker)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${marker} never ran`);
};
