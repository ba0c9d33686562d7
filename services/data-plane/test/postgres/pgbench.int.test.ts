import { startProxy, type ProxyHarness } from './support/proxy-harness';
import { ALL_BUT_DDL_POLICY } from './support/policies';
import { conninfo, createAppDatabase, run, type AppDatabase } from './support/test-database';

describe('postgres handler under pgbench', () => {
  let app: AppDatabase;
  let proxy: ProxyHarness;

  beforeAll(async () => {
    app = await createAppDatabase();
    // pgbench -i creates tables (DDL), so it runs directly against the database.
    const init = await run('pgbench', ['-i', '-s', '1', '-q', conninfo({ host: app.host, port: app.port, user: app.user, password: app.password, dbname: app.name })]);
    expect(init.code).toBe(0);
    proxy = await startProxy({ host: app.host, port: app.port, database: app.name, credentials: { kind: 'password', username: app.user, password: app.password }, policies: ALL_BUT_DDL_POLICY });
  }, 60_000);
  afterAll(async () => {
    await proxy?.close();
    await app?.drop();
  });

  it.each(['simple', 'extended', 'prepared'])('runs pgbench -S -M %s -t 200 through the handler', async (mode) => {
    const r = await run('pgbench', ['-S', '-M', mode, '-c', '2', '-j', '2', '-t', '200', '-n', '-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'tester', app.name]);
    expect(r.stderr).not.toMatch(/error|abort/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('number of transactions actually processed: 400/400');
  }, 60_000);

  it('runs the default (TPC-B-like, read-write) pgbench script through the handler', async () => {
    const r = await run('pgbench', ['-M', 'prepared', '-c', '2', '-t', '50', '-n', '-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'tester', app.name]);
    expect(r.stderr).not.toMatch(/error|abort/i);
    expect(r.stdout).toContain('number of transactions actually processed: 100/100');
    const events = await proxy.fixture.events();
    expect(events.filter((e) => e.action === 'sql.result' && e.outcome === 'success' && (e.details.tags as string[])[0] === 'UPDATE 1').length).toBeGreaterThanOrEqual(300);
  }, 60_000);
});
