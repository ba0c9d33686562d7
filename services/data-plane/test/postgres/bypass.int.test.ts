import { once } from 'node:events';
import { connect } from 'node:net';
import { frontend } from '@pa/pgwire';
import { startProxy, type ProxyHarness } from './support/proxy-harness';
import { APP_POLICY } from './support/policies';
import { createAppDatabase, type AppDatabase } from './support/test-database';
import { errorOf, msg, rowsOf, statusOf, types, WireClient, type WireMessage } from './support/wire-client';

/**
 * Every bypass class of SECURITY.md ("PostgreSQL data path") through the real
 * handler and a real PostgreSQL: each denied with 42501, the backend
 * untouched (checked on the database), the session still usable, and a
 * `denied` decision in the audit trail. The original port-authorizing matched
 * regular expressions on whatever one network read held; these are the inputs
 * that beat it.
 */
const DENIED: ReadonlyArray<readonly [string, string]> = [
  ['multi-statement', 'SELECT 1; DROP TABLE accounts'],
  ['multi-statement', 'SELECT * FROM accounts; TRUNCATE accounts'],
  ['multi-statement', 'select 1;\n\n  delete from secret.keys'],
  ['comments', '/* harmless */ DROP TABLE accounts'],
  ['comments', '-- SELECT 1\nDROP TABLE accounts'],
  ['comments', 'DROP/**/TABLE/**/accounts'],
  ['comments', 'SELECT * FROM /* accounts */ secret.keys'],
  ['dollar-quotes', 'SELECT $a$ $$ ; $a$; TRUNCATE accounts'],
  ['strings', "SELECT '\\'; DROP TABLE accounts; --'"],
  ['identifiers', 'SELECT * FROM "secret"."keys"'],
  ['identifiers', 'SELECT * FROM SECRET.KEYS'],
  ['identifiers', 'SELECT * FROM U&"k\\0065ys"'],
  ['dml-cte', "WITH d AS (INSERT INTO secret.keys VALUES ('x') RETURNING *) SELECT * FROM d"],
  ['dml-cte', 'WITH d AS (DELETE FROM secret.keys RETURNING *) SELECT count(*) FROM d'],
  ['nesting', 'SELECT * FROM accounts WHERE name IN (SELECT k FROM secret.keys)'],
  ['nesting', 'SELECT (SELECT max(k) FROM secret.keys) FROM accounts'],
  ['nesting', 'INSERT INTO audit_log (msg) SELECT k FROM secret.keys'],
  ['explain-analyze', 'EXPLAIN ANALYZE DELETE FROM accounts'],
  ['copy', 'COPY (SELECT * FROM secret.keys) TO STDOUT'],
  ['copy-program', "COPY accounts TO PROGRAM 'cat > /tmp/pa-stolen'"],
  ['copy-file', "COPY accounts TO '/tmp/pa-stolen.csv'"],
  ['copy-file', "COPY t FROM '/etc/passwd'"],
  ['select-into', 'SELECT * INTO stolen FROM accounts'],
  ['select-into', 'CREATE TABLE stolen AS SELECT * FROM accounts'],
  ['do', 'DO $$BEGIN DELETE FROM accounts; END$$'],
  ['functions', "SELECT pg_read_file('/etc/passwd')"],
  ['functions', "SELECT lo_import('/etc/passwd')"],
  ['functions', "SELECT query_to_xml('select * from secret.keys', true, true, '')"],
  ['functions', 'SELECT pg_terminate_backend(pg_backend_pid())'],
  ['functions', "SELECT set_config('client_encoding', 'LATIN1', false)"],
  ['set', "SET client_encoding = 'LATIN1'"],
  ['set', 'SET standard_conforming_strings = off'],
  ['set', 'SET ROLE postgres'],
  ['set', 'RESET ALL'],
  ['prepare', 'PREPARE p AS DELETE FROM secret.keys'],
  ['prepare', 'PREPARE q AS SELECT * FROM secret.keys'],
  ['parse-error', 'SELEC 1'],
  ['ddl', 'ALTER TABLE accounts ADD COLUMN x int'],
  ['grant', 'GRANT ALL ON accounts TO PUBLIC'],
];

describe('postgres handler: bypass classes of SECURITY.md', () => {
  let app: AppDatabase;
  let proxy: ProxyHarness;
  let c: WireClient;

  beforeAll(async () => {
    app = await createAppDatabase();
    proxy = await startProxy({ host: app.host, port: app.port, database: app.name, credentials: { kind: 'password', username: app.user, password: app.password }, policies: APP_POLICY });
    c = (await WireClient.connect(proxy.port, app.name)).client;
  });
  afterAll(async () => {
    c?.close();
    await proxy?.close();
    await app?.drop();
  });

  const expectUsable = async (client: WireClient): Promise<void> => {
    client.send(msg.query('SELECT count(*) FROM accounts'));
    expect(rowsOf(await client.readyForQuery())).toEqual([['10']]);
  };

  it.each(DENIED)('%s: %s is denied with 42501 and the session stays usable', async (_cls, sql) => {
    c.send(msg.query(sql));
    const r = await c.readyForQuery();
    expect(types(r)).toBe('EZ');
    expect(errorOf(r[0])).toMatchObject({ code: '42501', severity: 'ERROR' });
    expect(errorOf(r[0]).message).toMatch(/^permission denied by policy: /);
    expect(statusOf(r)).toBe('I');
    // The same text as a Parse message.
    c.send(msg.parse('', sql), msg.bind('', ''), msg.execute(), msg.sync());
    const p = await c.readyForQuery();
    expect(types(p)).toBe('EZ');
    expect(errorOf(p[0]).code).toBe('42501');
    await expectUsable(c);
  });

  it('frames exactly: a denied statement split across reads one byte at a time is still denied', async () => {
    const bytes = Buffer.concat([msg.query('SELECT 1; DROP TABLE accounts'), msg.query('SELECT 42')]);
    for (const b of bytes) {
      c.socket.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    const r1 = await c.readyForQuery();
    expect(errorOf(r1[0]).code).toBe('42501');
    expect(rowsOf(await c.readyForQuery())).toEqual([['42']]);
  });

  it('left the backend untouched and audited every denial', async () => {
    await app.direct(async (d) => {
      const r = await d.query(
        `SELECT (SELECT count(*)::int FROM accounts) AS accounts, (SELECT count(*)::int FROM secret.keys) AS keys,
                (SELECT count(*)::int FROM audit_log) AS log, to_regclass('stolen') IS NULL AS no_stolen,
                (SELECT count(*)::int FROM information_schema.columns WHERE table_name = 'accounts') AS columns,
                has_table_privilege('public', 'accounts', 'SELECT') AS public_grant`,
      );
      expect(r.rows[0]).toEqual({ accounts: 10, keys: 1, log: 0, no_stolen: true, columns: 3, public_grant: false });
    });
    const events = await proxy.fixture.events();
    for (const [, sql] of DENIED) {
      const denied = events.filter((e) => e.action === 'sql.statement' && e.outcome === 'denied' && e.details.sql === sql);
      expect({ sql, atLeastTwo: denied.length >= 2 }).toEqual({ sql, atLeastTwo: true });
      expect(denied[0]?.details.reason).toEqual(expect.any(String));
    }
  });

  it('ends the session if the backend ever reports client_encoding changed (here by a function the engine cannot see into)', async () => {
    await app.direct((d) =>
      d.query(`CREATE FUNCTION public.sneaky() RETURNS int LANGUAGE plpgsql AS $$BEGIN PERFORM set_config('client_encoding', 'LATIN1', false); RETURN 1; END$$`),
    );
    const { client } = await WireClient.connect(proxy.port, app.name);
    client.send(msg.query('SELECT public.sneaky()'));
    const rest = await client.closedByServer();
    const fatal = rest.find((m) => m.type === 'E');
    expect(errorOf(fatal)).toMatchObject({ severity: 'FATAL', code: '42501' });
    expect(rest.some((m) => m.type === 'S')).toBe(false);
    client.close();
  });

  describe('startup', () => {
    const raw = async (bytes: Buffer): Promise<WireMessage[] | Buffer> => {
      const s = connect({ host: '127.0.0.1', port: proxy.port });
      await once(s, 'connect');
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.write(bytes);
      await once(s, 'close');
      return Buffer.concat(chunks);
    };
    const fatalCode = (b: Buffer): string => {
      expect(String.fromCharCode(b[0] as number)).toBe('E');
      return errorOf({ type: 'E', body: b.subarray(5, 1 + b.readInt32BE(1)) }).code;
    };

    it.each([
      ['replication', { replication: 'database' }],
      ['options', { options: '-c search_path=secret' }],
      ['unknown', { pa_bypass: 'on' }],
      ['search_path', { search_path: 'secret' }],
      ['client_encoding', { client_encoding: 'LATIN1' }],
    ])('refuses the %s startup parameter with FATAL 08004', async (_name, params) => {
      const out = (await raw(frontend.startupMessage({ user: 'tester', database: app.name, ...params }))) as Buffer;
      expect(fatalCode(out)).toBe('08004');
    });

    it('refuses bytes pipelined after an SSLRequest without answering it', async () => {
      const out = (await raw(Buffer.concat([frontend.sslRequest(), frontend.startupMessage({ user: 'tester', database: app.name })]))) as Buffer;
      expect(fatalCode(out)).toBe('08P01');
    });

    it('answers a newer protocol minor version with NegotiateProtocolVersion (3.0) before AuthenticationOk', async () => {
      const s = connect({ host: '127.0.0.1', port: proxy.port });
      await once(s, 'connect');
      s.write(frontend.startupMessage({ user: 'tester', database: app.name, '_pq_.test': 'x' }, 2));
      const [first] = (await once(s, 'data')) as [Buffer];
      expect(String.fromCharCode(first[0] as number)).toBe('v');
      expect(first.readInt32BE(5)).toBe(0);
      expect(first.readInt32BE(9)).toBe(1);
      s.destroy();
    });

    it('declines SSL and GSS encryption, then serves the startup that follows', async () => {
      const s = connect({ host: '127.0.0.1', port: proxy.port });
      await once(s, 'connect');
      const read = (): Promise<Buffer> => once(s, 'data').then(([d]) => d as Buffer);
      s.write(frontend.gssEncRequest());
      expect((await read()).toString()).toBe('N');
      s.write(frontend.sslRequest());
      expect((await read()).toString()).toBe('N');
      s.write(frontend.startupMessage({ user: 'tester', database: app.name }));
      const hello = await read();
      expect(hello.readInt32BE(5)).toBe(0); // AuthenticationOk, no password asked
      s.destroy();
    });
  });
});
