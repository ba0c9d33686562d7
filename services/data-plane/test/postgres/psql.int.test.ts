import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, type ProxyHarness } from './support/proxy-harness';
import { APP_POLICY } from './support/policies';
import { createAppDatabase, psql, type AppDatabase } from './support/test-database';

describe('postgres handler with psql', () => {
  let app: AppDatabase;
  let proxy: ProxyHarness;
  let dir: string;

  beforeAll(async () => {
    app = await createAppDatabase();
    proxy = await startProxy({
      host: app.host,
      port: app.port,
      database: app.name,
      credentials: { kind: 'password', username: app.user, password: app.password },
      policies: APP_POLICY,
    });
    dir = mkdtempSync(join(tmpdir(), 'pa-psql-'));
  });
  afterAll(async () => {
    await proxy?.close();
    await app?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs psql -c through the proxy (SSLRequest answered N, no password asked)', async () => {
    const r = await psql(proxy.port, app.name, ['-At', '-c', 'SELECT count(*) FROM accounts', '-c', "SHOW client_encoding"]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['10', 'UTF8']);
    expect(r.code).toBe(0);
  });

  it('denies a statement with 42501 naming the rule, and the next statement still runs', async () => {
    const r = await psql(proxy.port, app.name, ['-At', '-v', 'VERBOSITY=verbose', '-c', 'SELECT * FROM secret.keys', '-c', 'SELECT 1']);
    expect(r.stderr).toContain('ERROR:  42501: permission denied by policy');
    expect(r.stderr).toContain('denied by rule "No secrets" of policy "app"');
    expect(r.stdout.trim()).toBe('1');
  });

  it('runs a psql -f script with a transaction; a denial inside it aborts the transaction (25P02 until ROLLBACK)', async () => {
    const file = join(dir, 'script.sql');
    writeFileSync(
      file,
      [
        'BEGIN;',
        "INSERT INTO audit_log VALUES ('first');",
        'CREATE TABLE nope (x int);',
        "INSERT INTO audit_log VALUES ('second');",
        'ROLLBACK;',
        'BEGIN;',
        "INSERT INTO audit_log VALUES ('kept');",
        'COMMIT;',
        'SELECT msg FROM audit_log ORDER BY msg;',
      ].join('\n'),
    );
    const r = await psql(proxy.port, app.name, ['-At', '-v', 'VERBOSITY=verbose', '-f', file]);
    expect(r.stderr).toContain('ERROR:  42501: permission denied by policy: ddl on nope: denied by rule "No schema changes"');
    expect(r.stderr).toContain('ERROR:  25P02: current transaction is aborted');
    expect(r.stdout.trim()).toBe('kept');
    await app.direct(async (c) => {
      const t = await c.query("SELECT to_regclass('nope') AS r");
      expect(t.rows[0]?.r).toBeNull();
    });
  });

  it('copies both ways with \\copy', async () => {
    const out = join(dir, 'accounts.csv');
    const r1 = await psql(proxy.port, app.name, ['-c', `\\copy (SELECT id, name FROM accounts ORDER BY id) TO '${out}' WITH (FORMAT csv)`]);
    expect(r1.stderr).toBe('');
    expect(readFileSync(out, 'utf8').split('\n')[0]).toBe('1,name1');
    const input = join(dir, 'rows.csv');
    writeFileSync(input, Array.from({ length: 5000 }, (_, i) => `${i},${i * 2}`).join('\n') + '\n');
    const r2 = await psql(proxy.port, app.name, ['-c', `\\copy t (a, b) FROM '${input}' WITH (FORMAT csv)`]);
    expect(r2.stderr).toBe('');
    expect(r2.code).toBe(0);
    const n = await app.direct((c) => c.query('SELECT count(*)::int AS n, sum(b)::bigint AS s FROM t'));
    expect(n.rows[0]).toEqual({ n: 5000, s: String(2 * ((4999 * 5000) / 2)) });
    // A COPY the policy denies never starts.
    const r3 = await psql(proxy.port, app.name, ['-c', `\\copy secret.keys TO '${out}'`]);
    expect(r3.stderr).toContain('permission denied by policy');
  });

  it('refuses startup options (-c settings) with FATAL 08004', async () => {
    const r = await psql(proxy.port, app.name, ['-c', 'SELECT 1'], { extra: { options: '-c search_path=secret' } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Startup parameter "options" is not allowed');
  });

  it('refuses a database other than the grant\'s', async () => {
    const r = await psql(proxy.port, 'postgres', ['-c', 'SELECT 1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`is not reachable through this grant; it serves database "${app.name}"`);
  });

  it('audits each statement: a decision before, an outcome after', async () => {
    await psql(proxy.port, app.name, ['-c', 'SELECT id FROM accounts WHERE id = 3', '-c', 'DROP TABLE accounts']);
    const events = await proxy.fixture.events();
    const allowed = events.find((e) => e.action === 'sql.statement' && e.outcome === 'allowed' && e.details.sql === 'SELECT id FROM accounts WHERE id = 3');
    expect(allowed?.details).toMatchObject({ message: 'Query', kinds: ['select'], relations: ['accounts'], rule: { ruleId: 'dml' } });
    const result = events.find((e) => e.action === 'sql.result' && e.details.seq === allowed?.details.seq && e.details.tunnelId === allowed?.details.tunnelId);
    expect(result).toMatchObject({ outcome: 'success', details: { tags: ['SELECT 1'], rows: 1 } });
    expect(events.indexOf(result as (typeof events)[number])).toBeGreaterThan(events.indexOf(allowed as (typeof events)[number]));
    const denied = events.find((e) => e.action === 'sql.statement' && e.outcome === 'denied' && e.details.sql === 'DROP TABLE accounts');
    expect(denied?.details).toMatchObject({ kinds: ['ddl'], rule: { ruleId: 'no-ddl' } });
    await app.direct(async (c) => expect((await c.query('SELECT count(*)::int AS n FROM accounts')).rows[0]).toEqual({ n: 10 }));
  });
});
