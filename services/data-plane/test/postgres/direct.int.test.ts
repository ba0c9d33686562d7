import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCaptureLogger } from '@pa/kit';
import { frontend } from '@pa/pgwire';
import { createState, type State } from '@pa/state';
import { createTestPki, type TestCa, type TestCertificate, type TestPki } from '@pa/testing';
import { openTunnel } from '@pa/tunnel';
import type { AuditEvent } from '../../src/audit';
import { loadConfig } from '../../src/config';
import { startNode, type RunningNode } from '../../src/node';
import { createGrantFactory } from '../../src/testing/grant-factory';
import { recordingTransport } from '../../src/testing/recording-transport';
import { pgClient, withPg, type PgError } from './support/node-postgres';
import { APP_POLICY } from './support/policies';
import { conninfo, createAppDatabase, isRunning, psql, waitForActivity, type AppDatabase } from './support/test-database';

/**
 * Direct PostgreSQL connections to a node (no pa connect): TLS required, the
 * grant as the password, then the same admission, policy and audit as a
 * tunnel. Real node, real PostgreSQL, node-postgres and psql.
 */
describe('postgres: direct connections with the grant as the password over TLS', () => {
  let app: AppDatabase;
  let pki: TestPki;
  let ca: TestCa;
  let cert: TestCertificate;
  let state: State;
  let node: RunningNode;
  let dir: string;
  let factory: Awaited<ReturnType<typeof createGrantFactory>>;
  let host: string;
  let port: number;
  const shipped: AuditEvent[] = [];
  const { logger } = createCaptureLogger('direct-test');

  beforeAll(async () => {
    app = await createAppDatabase();
    pki = createTestPki();
    ca = pki.ca('pa direct CA');
    cert = pki.issue(ca, 'localhost', { dns: ['localhost'], ips: ['127.0.0.1'] });
    state = createState({ keyPrefix: 'direct:', logger });
    await state.revocations.start();
    factory = await createGrantFactory();
    dir = mkdtempSync(join(tmpdir(), 'pa-direct-'));
    const config = loadConfig(
      {},
      {
        dataDir: dir,
        tunnel: { port: 0, tls: { certFile: cert.certFile, keyFile: cert.keyFile } },
        postgresDirect: { port: 0 },
        admin: { port: 0 },
        controlPlane: { issuer: factory.issuer },
        drainTimeoutSeconds: 1,
      },
    );
    node = await startNode(config, logger, {
      state,
      keys: factory.keys,
      transport: recordingTransport(shipped),
    });
    const address = node.postgresDirectAddress as string;
    host = address.slice(0, address.lastIndexOf(':'));
    port = Number(address.slice(address.lastIndexOf(':') + 1));
  });
  afterAll(async () => {
    await node?.stop();
    await state?.close();
    pki?.cleanup();
    await app?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const grant = async (protocol: 'postgres' | 'tcp' = 'postgres'): Promise<string> =>
    (
      await factory.sign({
        protocol,
        host: app.host,
        port: app.port,
        database: app.name,
        rules: APP_POLICY[0]?.rules ?? [],
        credentials: { kind: 'password', username: app.user, password: app.password },
      })
    ).token;

  const failure = async (config: Parameters<typeof pgClient>[0]): Promise<PgError> => {
    const c = pgClient(config);
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.end();
    } catch (err) {
      return err as PgError;
    }
    throw new Error('the connection was expected to fail');
  };

  it('runs allowed statements and refuses denied ones (node-postgres, TLS verified against the node certificate)', async () => {
    const token = await grant();
    await withPg({ host, port, user: 'tester', database: app.name, password: token, ssl: { ca: ca.cert, servername: 'localhost' } }, async (c) => {
      expect((await c.query('SELECT name FROM accounts WHERE id = $1', [3])).rows).toEqual([{ name: 'name3' }]);
      await expect(c.query('DROP TABLE accounts')).rejects.toMatchObject({ code: '42501' });
      expect((await c.query('SELECT count(*)::int AS n FROM accounts')).rows[0]).toEqual({ n: expect.any(Number) });
    });
    await app.direct(async (d) => expect((await d.query("SELECT to_regclass('public.accounts') IS NOT NULL AS present")).rows[0]).toEqual({ present: true }));
    await waitUntil(() => shippedFor(token).some((e) => e.action === 'session.end'));
    const mine = shippedFor(token);
    expect(mine.map((e) => e.action)).toEqual(expect.arrayContaining(['tunnel.open', 'session.start', 'sql.statement', 'sql.result', 'session.end']));
    expect(mine.filter((e) => e.action === 'sql.statement' && e.outcome === 'denied').map((e) => e.details.sql)).toEqual(['DROP TABLE accounts']);
    expect(mine.find((e) => e.action === 'tunnel.open')?.details).toMatchObject({ clientLabel: 'postgres direct' });
  });

  it('works with psql (sslmode=require, the grant in PGPASSWORD-style conninfo)', async () => {
    const token = await grant();
    const r = await psql(port, app.name, ['-A', '-t', '-c', 'SELECT 40 + 2'], { extra: { host, sslmode: 'require', password: token } });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('42');
  });

  it('refuses a connection without TLS: FATAL 28000 that says to use sslmode=require', async () => {
    const err = await failure({ host, port, user: 'tester', database: app.name, password: await grant(), ssl: false });
    expect(err.code).toBe('28000');
    expect(err.message).toContain('sslmode=require');
  });

  it('refuses a password that is not a valid grant (28000), and audits the refusal', async () => {
    const before = shipped.length;
    const err = await failure({ host, port, user: 'tester', database: app.name, password: 'not-a-grant', ssl: { ca: ca.cert, servername: 'localhost' } });
    expect(err.code).toBe('28000');
    await waitUntil(() => shipped.slice(before).some((e) => e.action === 'tunnel.denied' && e.details.errorCode === 'GRANT_MALFORMED'));
  });

  it('serves postgres grants only', async () => {
    const err = await failure({ host, port, user: 'tester', database: app.name, password: await grant('tcp'), ssl: { ca: ca.cert, servername: 'localhost' } });
    expect(err.severity).toBe('FATAL');
    expect(err.message).toContain('postgres grants');
  });

  /** Sends a CancelRequest on a plain connection of its own, as libpq before PostgreSQL 17 does, and waits until the node has closed it. */
  const sendCancelRequest = async (processId: number, secret: number): Promise<void> => {
    const s = connect({ host, port });
    s.on('error', () => undefined);
    await once(s, 'connect');
    const key = Buffer.alloc(4);
    key.writeInt32BE(secret);
    s.end(frontend.cancelRequest(processId, key));
    await once(s, 'close');
  };

  it('cancels a running query from a CancelRequest sent in clear to the direct port, with the key the node issued; a wrong secret is ignored', async () => {
    const token = await grant();
    const c = pgClient({ host, port, user: 'tester', database: app.name, password: token, ssl: { ca: ca.cert, servername: 'localhost' } });
    c.on('error', () => undefined);
    await c.connect();
    try {
      const running = c.query('SELECT pg_sleep(30) AS direct_cancel_me').then(
        () => null,
        (e: unknown) => e as PgError,
      );
      await waitForActivity(app, 'direct_cancel_me');
      const pid = c.processID as number;
      const secret = c.secretKey as number;
      // The key is the node's own: not the backend's process id.
      const backendPids = await app.direct(async (d) => (await d.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE query LIKE '%direct_cancel_me%' AND pid <> pg_backend_pid()")).rows.map((r) => r.pid));
      expect(backendPids).not.toContain(pid);
      await sendCancelRequest(pid, secret ^ 1);
      expect(await isRunning(app, 'direct_cancel_me')).toBe(true);
      const t0 = Date.now();
      await sendCancelRequest(pid, secret);
      const err = await running;
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(err?.code).toBe('57014');
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end().catch(() => undefined);
    }
    await waitUntil(() => shippedFor(token).some((e) => e.action === 'sql.cancel'));
    const cancels = shippedFor(token).filter((e) => e.action === 'sql.cancel');
    expect(cancels.map((e) => [e.outcome, e.details.clientPath])).toEqual([['allowed', 'direct']]);
  });

  it('cancels with psql: Ctrl-C (SIGINT) while a query runs over a direct connection', async () => {
    const token = await grant();
    const child = spawn('psql', ['-X', '-q', '-d', conninfo({ host, port, user: 'tester', dbname: app.name, sslmode: 'require', password: token }), '-c', 'SELECT pg_sleep(30) AS psql_ctrl_c'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = once(child, 'close') as Promise<[number | null]>;
    try {
      await waitForActivity(app, 'psql_ctrl_c');
      const t0 = Date.now();
      child.kill('SIGINT');
      const [code] = await exited;
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(code).toBe(1);
      expect(stderr).toContain('canceling statement due to user request');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('does not honour a tunnel session\'s cancel key at the direct port (refused and audited; the query runs on)', async () => {
    const token = await grant();
    const { socket } = await openTunnel({ url: node.tunnelUrl, grant: token, ca: ca.cert });
    const c = pgClient({ stream: socket, user: 'tester', database: app.name });
    c.on('error', () => undefined);
    await c.connect();
    try {
      const running = c.query('SELECT pg_sleep(1.5) AS tunnel_key_at_direct, 7 AS n');
      await waitForActivity(app, 'tunnel_key_at_direct');
      await sendCancelRequest(c.processID as number, c.secretKey as number);
      expect((await running).rows).toEqual([{ tunnel_key_at_direct: '', n: 7 }]);
    } finally {
      await c.end().catch(() => undefined);
    }
    await waitUntil(() => shippedFor(token).some((e) => e.action === 'sql.cancel'));
    const cancels = shippedFor(token).filter((e) => e.action === 'sql.cancel');
    expect(cancels.map((e) => [e.outcome, e.details.clientPath])).toEqual([['denied', 'direct']]);
    expect(cancels[0]?.details.reason).toContain('tunnel');
  });

  const shippedFor = (token: string): AuditEvent[] => {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8')) as { jti: string };
    return shipped.filter((e) => e.grantId === claims.jti);
  };

  const waitUntil = async (done: () => boolean): Promise<void> => {
    for (let i = 0; i < 500 && !done(); i += 1) await new Promise((r) => setTimeout(r, 20));
    expect(done()).toBe(true);
  };
});
