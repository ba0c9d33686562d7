import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '@pa/kit';
import { frontend, readBackendKeyData } from '@pa/pgwire';
import { AuditRecorder, AuditSpool } from '../../src/audit';
import { sessionAudit } from '../../src/protocols/handler';
import { tcpServer } from '../../src/testing/socket-pair';
import { startProxy, type ProxyHarness, type ProxyHarnessOptions } from './support/proxy-harness';
import { APP_POLICY } from './support/policies';
import { createAppDatabase, waitForActivity, type AppDatabase } from './support/test-database';
import { errorOf, msg, rowsOf, statusOf, types, WireClient } from './support/wire-client';

describe('postgres handler: faults, limits, cancel', () => {
  let app: AppDatabase;
  const proxies: ProxyHarness[] = [];
  const clients: WireClient[] = [];

  beforeAll(async () => {
    app = await createAppDatabase();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const p of proxies.splice(0)) await p.close();
  });
  afterAll(async () => {
    await app?.drop();
  });

  const proxy = async (extra: Partial<ProxyHarnessOptions> = {}): Promise<ProxyHarness> => {
    const p = await startProxy({ host: app.host, port: app.port, database: app.name, credentials: { kind: 'password', username: app.user, password: app.password }, policies: APP_POLICY, ...extra });
    proxies.push(p);
    return p;
  };
  const open = async (p: ProxyHarness): Promise<{ client: WireClient; key: { processId: number; secretKey: Buffer } | null }> => {
    const { client, startup } = await WireClient.connect(p.port, app.name);
    clients.push(client);
    const k = startup.find((m) => m.type === 'K');
    const r = k ? readBackendKeyData(k.body) : null;
    return { client, key: r && r.ok ? r.value : null };
  };

  it('reports a backend that is down at connect as FATAL 08001', async () => {
    const gone = await tcpServer(() => undefined);
    const port = gone.port;
    await gone.close();
    const p = await proxy({ port });
    const { client, startup } = await WireClient.connect(p.port, app.name);
    clients.push(client);
    expect(startup.map((m) => m.type)).toEqual(['E']);
    expect(errorOf(startup[0])).toMatchObject({ severity: 'FATAL', code: '08001' });
  });

  it('reports a backend connection reset mid-query as FATAL 08006 and audits the statement as an error', async () => {
    const relayed: Socket[] = [];
    const relay = await tcpServer((s) => {
      const up = connect({ host: app.host, port: app.port });
      relayed.push(s, up);
      s.pipe(up).pipe(s);
      s.on('error', () => undefined);
      up.on('error', () => undefined);
    });
    try {
      const p = await proxy({ port: relay.port });
      const { client } = await open(p);
      client.send(msg.query("SELECT pg_sleep(10) AS reset_me"));
      await waitForActivity(app, 'reset_me');
      for (const s of relayed) s.resetAndDestroy();
      const rest = await client.closedByServer();
      expect(errorOf(rest.find((m) => m.type === 'E'))).toMatchObject({ severity: 'FATAL', code: '08006' });
      expect((await p.results[0])?.reason).toBe('upstream_error');
      const events = await p.fixture.events();
      expect(events.find((e) => e.action === 'sql.result' && e.outcome === 'error')?.details).toMatchObject({ end: 'aborted' });
    } finally {
      await relay.close();
    }
  });

  it('keeps memory bounded for a client that does not read a large result (backpressure), then delivers it all', async () => {
    const p = await proxy();
    const { client } = await open(p);
    client.socket.pause();
    client.send(msg.query('SELECT * FROM big'));
    const server = p.sockets[0] as Socket;
    let maxBuffered = 0;
    for (let i = 0; i < 20; i += 1) {
      await new Promise((r) => setTimeout(r, 50));
      maxBuffered = Math.max(maxBuffered, server.writableLength);
    }
    // One backend read beyond the socket's high-water mark at most, while ~20 MB wait in PostgreSQL.
    expect(maxBuffered).toBeLessThan(512 * 1024);
    client.socket.resume();
    const r = await client.readyForQuery();
    expect(r.filter((m) => m.type === 'D')).toHaveLength(100_000);
    client.send(msg.query('SELECT 1'));
    expect(rowsOf(await client.readyForQuery())).toEqual([['1']]);
  });

  it('ends the session on revocation mid-transaction: FATAL 57P01 within a second, transaction rolled back', async () => {
    const p = await proxy();
    const { client } = await open(p);
    client.send(msg.query("BEGIN; INSERT INTO audit_log VALUES ('revoked-tx')"));
    expect(statusOf(await client.readyForQuery())).toBe('T');
    const t0 = Date.now();
    p.fixture.abort.abort(new AppError('GRANT_REVOKED'));
    const rest = await client.closedByServer();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(errorOf(rest.find((m) => m.type === 'E'))).toEqual({ severity: 'FATAL', code: '57P01', message: 'terminating connection: grant revoked' });
    expect((await p.results[0])?.reason).toBe('revoked');
    await new Promise((r) => setTimeout(r, 200));
    await app.direct(async (d) => expect((await d.query("SELECT count(*)::int AS n FROM audit_log WHERE msg = 'revoked-tx'")).rows[0]).toEqual({ n: 0 }));
  });

  it('refuses statements with 58000 when the audit spool is full, rather than run them unaudited', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pa-full-spool-'));
    const spool = await AuditSpool.open({ dir, capacityBytes: 6000, admissionHeadroomBytes: 2000, groupCommitWindowMs: 0 });
    try {
      let audit: ReturnType<typeof sessionAudit> | null = null;
      const p = await proxy({
        context: (ctx) => {
          audit ??= sessionAudit(new AuditRecorder({ spool, nodeId: 'n' }), ctx.grant, 'postgres', ctx.tunnelId);
          return { ...ctx, audit, consumeRequest: () => Promise.resolve({ allowed: true, source: 'local' as const }) };
        },
      });
      const { client } = await open(p);
      let refused = 0;
      for (let i = 0; i < 40 && refused === 0; i += 1) {
        client.send(msg.query(`INSERT INTO audit_log VALUES ('spool-${i}')`));
        const r = await client.readyForQuery();
        const e = r.find((m) => m.type === 'E');
        if (e) {
          expect(errorOf(e)).toMatchObject({ severity: 'ERROR', code: '58000' });
          refused = i;
        }
      }
      expect(refused).toBeGreaterThan(0);
      // The refused INSERT never reached the backend; the session is still there.
      await app.direct(async (d) => expect((await d.query('SELECT count(*)::int AS n FROM audit_log WHERE msg = $1', [`spool-${refused}`])).rows[0]).toEqual({ n: 0 }));
      client.send(msg.parse('', "INSERT INTO audit_log VALUES ('ext')"), msg.bind('', ''), msg.execute(), msg.sync());
      const r = await client.readyForQuery();
      expect(types(r)).toBe('1EZ');
      expect(errorOf(r[1]).code).toBe('58000');
    } finally {
      await spool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('cancels a running query with a CancelRequest on another connection (proxy key mapped to the backend key)', async () => {
    const p = await proxy();
    const { client, key } = await open(p);
    expect(key).not.toBeNull();
    const backendPid = await app.direct(async (d) => (await d.query("SELECT max(pid) AS pid FROM pg_stat_activity WHERE application_name = '' AND datname = current_database() AND pid <> pg_backend_pid()")).rows[0]?.pid);
    expect(key?.processId).not.toBe(backendPid);
    client.send(msg.query('SELECT pg_sleep(30) AS cancel_me'));
    await waitForActivity(app, 'cancel_me');
    // A wrong secret is ignored.
    const bad = connect({ host: '127.0.0.1', port: p.port });
    await once(bad, 'connect');
    bad.end(frontend.cancelRequest(key?.processId ?? 0, Buffer.from('nope')));
    await once(bad, 'close');
    const cancel = connect({ host: '127.0.0.1', port: p.port });
    await once(cancel, 'connect');
    const t0 = Date.now();
    cancel.end(frontend.cancelRequest(key?.processId ?? 0, key?.secretKey ?? Buffer.alloc(4)));
    const r = await client.readyForQuery();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(errorOf(r.find((m) => m.type === 'E'))).toMatchObject({ code: '57014' });
    client.send(msg.query('SELECT 1'));
    expect(rowsOf(await client.readyForQuery())).toEqual([['1']]);
    const events = await p.fixture.events();
    expect(events.filter((e) => e.action === 'sql.cancel').map((e) => e.outcome)).toEqual(['denied', 'allowed']);
  });

  it('refuses statements over the rate limit with 53400', async () => {
    let n = 0;
    const p = await proxy({
      context: (ctx) => ({ ...ctx, consumeRequest: () => Promise.resolve((n += 1) % 2 === 0 ? { allowed: false as const, retryAfterMs: 1500, scope: 'user' as const, source: 'local' as const } : { allowed: true as const, source: 'local' as const }) }),
    });
    const { client } = await open(p);
    client.send(msg.query('SELECT 1'), msg.query('SELECT 2'), msg.query('SELECT 3'));
    const r1 = await client.readyForQuery();
    const r2 = await client.readyForQuery();
    const r3 = await client.readyForQuery();
    expect(rowsOf(r1)).toEqual([['1']]);
    expect(errorOf(r2[0])).toMatchObject({ code: '53400' });
    expect(rowsOf(r3)).toEqual([['3']]);
  });

  it('refuses a statement or Bind over the 1 MiB cap with 54000 without reading it, keeps transaction semantics, and the session goes on', async () => {
    const p = await proxy();
    const { client } = await open(p);
    const huge = `INSERT INTO audit_log VALUES ('oversize-' || length('${'x'.repeat(1024 * 1024 + 10)}'))`;
    client.send(msg.query('BEGIN'), msg.query("INSERT INTO audit_log VALUES ('before-huge')"), msg.query(huge), msg.query('SELECT 1'));
    await client.readyForQuery();
    await client.readyForQuery();
    const refused = await client.readyForQuery();
    expect(errorOf(refused.find((m) => m.type === 'E'))).toMatchObject({ severity: 'ERROR', code: '54000', message: expect.stringContaining('statement too large') });
    expect(statusOf(refused)).toBe('E'); // the transaction block is aborted, as a real error would
    expect(errorOf((await client.readyForQuery()).find((m) => m.type === 'E')).code).toBe('25P02');
    client.send(msg.query('ROLLBACK'));
    expect(statusOf(await client.readyForQuery())).toBe('I');
    // Extended protocol: the oversized Parse fails, the batch skips to Sync, the next one runs.
    client.send(msg.parse('', huge), msg.bind('', ''), msg.execute(), msg.sync(), msg.query('SELECT 2'));
    const ext = await client.readyForQuery();
    expect(types(ext)).toBe('EZ');
    expect(errorOf(ext[0]).code).toBe('54000');
    expect(rowsOf(await client.readyForQuery())).toEqual([['2']]);
    // A Bind whose parameter is over the cap: refused the same way (54000), the session goes on.
    client.send(msg.parse('', "INSERT INTO audit_log VALUES ('oversize-' || length($1::text))"), msg.bind('', '', ['y'.repeat(1024 * 1024 + 10)]), msg.execute(), msg.sync(), msg.query('SELECT 3'));
    const bind = await client.readyForQuery();
    expect(types(bind)).toBe('1EZ');
    expect(errorOf(bind[1])).toMatchObject({ code: '54000', message: expect.stringContaining('parameters too large') });
    expect(rowsOf(await client.readyForQuery())).toEqual([['3']]);
    // Nothing of it reached the backend; the rolled-back insert is gone too.
    await app.direct(async (d) => expect((await d.query("SELECT count(*)::int AS n FROM audit_log WHERE msg = 'before-huge' OR msg LIKE 'oversize-%'")).rows[0]).toEqual({ n: 0 }));
    const denied = (await p.fixture.events()).filter((e) => e.action === 'sql.statement' && e.outcome === 'denied' && e.details.reason === 'statement too large');
    expect(denied.map((e) => e.details.message)).toEqual(['Query', 'Parse']);
    expect((await p.fixture.events()).filter((e) => e.action === 'sql.statement' && e.outcome === 'denied' && e.details.reason === 'parameters too large')).toHaveLength(1);
  });

  it('closes an idle session with FATAL 57P05, but not one whose statement is still running', async () => {
    const p = await proxy({ settings: { idleTimeoutMs: 300 } });
    const { client } = await open(p);
    client.send(msg.query('SELECT pg_sleep(0.8)'));
    expect(types(await client.readyForQuery())).toBe('TDCZ');
    const rest = await client.closedByServer();
    expect(errorOf(rest.find((m) => m.type === 'E'))).toMatchObject({ severity: 'FATAL', code: '57P05' });
    expect((await p.results[0])?.reason).toBe('idle_timeout');
  });

  it('passes on a FATAL the backend sends itself (administrator shutdown) and ends the session', async () => {
    const p = await proxy();
    const { client } = await open(p);
    client.send(msg.query("SET application_name = 'pa-victim'"));
    await client.readyForQuery();
    await app.direct((d) => d.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pa-victim'"));
    const rest = await client.closedByServer();
    expect(errorOf(rest.find((m) => m.type === 'E'))).toMatchObject({ severity: 'FATAL', code: '57P01' });
    expect((await p.results[0])?.reason).toBe('upstream_closed');
  });

  it('ends cleanly on Terminate and reports bytes and statements to the listener', async () => {
    const p = await proxy();
    const { client } = await open(p);
    client.send(msg.query("SET application_name = 'pa-terminate'"), msg.query('SELECT 1'));
    await client.readyForQuery();
    await client.readyForQuery();
    client.send(msg.terminate());
    expect(await client.closedByServer()).toEqual([]);
    const result = await p.results[0];
    expect(result).toMatchObject({ reason: 'client_closed', requests: 2 });
    expect(result?.bytesFromClient).toBeGreaterThan(40);
    expect(result?.bytesToClient).toBeGreaterThan(100);
    await app.direct(async (d) => expect((await d.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pa-terminate'")).rows[0]).toEqual({ n: 0 }));
  });

  it('answers a frontend protocol violation with FATAL 08P01', async () => {
    const p = await proxy();
    const { client } = await open(p);
    client.send(Buffer.from([0x7a, 0, 0, 0, 4]));
    const rest = await client.closedByServer();
    expect(errorOf(rest.find((m) => m.type === 'E'))).toMatchObject({ severity: 'FATAL', code: '08P01' });
  });
});
