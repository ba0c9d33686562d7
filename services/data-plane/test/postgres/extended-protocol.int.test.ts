import { startProxy, type ProxyHarness } from './support/proxy-harness';
import { withPg } from './support/node-postgres';
import { APP_POLICY } from './support/policies';
import { createAppDatabase, type AppDatabase } from './support/test-database';
import { errorOf, msg, rowsOf, statusOf, tagsOf, types, WireClient } from './support/wire-client';

describe('postgres handler: extended query protocol', () => {
  let app: AppDatabase;
  let proxy: ProxyHarness;
  const clients: WireClient[] = [];
  const open = async (): Promise<WireClient> => {
    const { client, startup } = await WireClient.connect(proxy.port, app.name);
    expect(types(startup)).toMatch(/^R(S)+KZ$/);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    app = await createAppDatabase();
    proxy = await startProxy({ host: app.host, port: app.port, database: app.name, credentials: { kind: 'password', username: app.user, password: app.password }, policies: APP_POLICY });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await proxy?.close();
    await app?.drop();
  });

  it('runs an unnamed statement with text parameters (Parse/Bind/Describe/Execute/Sync in one write)', async () => {
    const c = await open();
    c.send(msg.parse('', 'SELECT name FROM accounts WHERE id = $1'), msg.bind('', '', ['3']), msg.describe('P', ''), msg.execute(), msg.sync());
    const r = await c.readyForQuery();
    expect(types(r)).toBe('12TDCZ');
    expect(rowsOf(r)).toEqual([['name3']]);
    expect(statusOf(r)).toBe('I');
  });

  it('judges a named statement once at Parse and audits every execution with hashed parameters', async () => {
    const c = await open();
    c.send(msg.parse('byid', 'SELECT balance FROM accounts WHERE id = $1', [23]), msg.sync());
    expect(types(await c.readyForQuery())).toBe('1Z');
    for (const id of ['1', '2', '2']) {
      c.send(msg.bind('', 'byid', [id]), msg.execute(), msg.sync());
      expect(types(await c.readyForQuery())).toBe('2DCZ');
    }
    c.send(msg.close('S', 'byid'), msg.sync());
    expect(types(await c.readyForQuery())).toBe('3Z');
    const events = await proxy.fixture.events();
    const binds = events.filter((e) => e.action === 'sql.statement' && e.details.message === 'Bind' && e.details.statement === 'byid');
    expect(binds).toHaveLength(3);
    expect(binds[0]?.details).toMatchObject({ sql: 'SELECT balance FROM accounts WHERE id = $1', kinds: ['select'], parameters: { count: 1 } });
    const hashes = binds.map((b) => (b.details.parameters as { sha256: string }).sha256);
    expect(hashes[1]).toBe(hashes[2]);
    expect(hashes[0]).not.toBe(hashes[1]);
    expect(JSON.stringify(binds)).not.toContain('"2"');
  });

  it('gives every bound portal an outcome record: executed, replaced, closed or left at session end', async () => {
    const c = await open();
    c.send(
      msg.parse('nx', 'SELECT $1::int AS never_run_marker', [23]),
      msg.bind('', 'nx', ['1']), // replaced by the next Bind of the unnamed portal, never executed
      msg.bind('', 'nx', ['2']),
      msg.execute(),
      msg.bind('p_closed', 'nx', ['3']), // closed without an Execute
      msg.close('P', 'p_closed'),
      msg.sync(),
    );
    expect(types(await c.readyForQuery())).toBe('122DC23Z');
    c.send(msg.bind('p_left', 'nx', ['4']), msg.flush()); // still open when the session ends
    expect(types([(await c.next())!])).toBe('2');
    c.send(msg.terminate());
    const outcomesFor = async (): Promise<{ decisions: number[]; ends: Map<number, string> }> => {
      const events = await proxy.fixture.events();
      const mine = events.filter((e) => e.action === 'sql.statement' && e.details.message === 'Bind' && e.details.statement === 'nx');
      const tunnel = mine[0]?.details.tunnelId;
      const ends = new Map<number, string>();
      for (const e of events) if (e.action === 'sql.result' && e.details.tunnelId === tunnel) ends.set(e.details.seq as number, e.details.end as string);
      return { decisions: mine.map((e) => e.details.seq as number), ends };
    };
    let seen = await outcomesFor();
    while (seen.decisions.some((seq) => !seen.ends.has(seq))) seen = await outcomesFor(); // the session's end is recorded after Terminate
    expect(seen.decisions.map((seq) => seen.ends.get(seq))).toEqual(['not_executed', 'completed', 'not_executed', 'not_executed']);
  });

  it('passes binary parameters and binary results', async () => {
    const c = await open();
    const four = Buffer.alloc(4);
    four.writeInt32BE(4, 0);
    c.send(msg.parse('', 'SELECT id, balance FROM accounts WHERE id = $1', [23]), msg.bind('', '', [four], [1], [1]), msg.execute(), msg.sync());
    const r = await c.readyForQuery();
    expect(types(r)).toBe('12DCZ');
    const row = r.find((m) => m.type === 'D')?.body as Buffer;
    expect(row.readInt16BE(0)).toBe(2);
    expect(row.readInt32BE(2)).toBe(4);
    expect(row.readInt32BE(6)).toBe(4);
    expect(row.readInt32BE(14)).toBe(100);
  });

  it('skips to Sync after a denied Parse in a pipeline, as PostgreSQL does after an error; the implicit transaction is rolled back', async () => {
    const c = await open();
    c.send(
      msg.parse('', "INSERT INTO audit_log VALUES ('pipelined')"),
      msg.bind('', ''),
      msg.execute(),
      msg.parse('', 'SELECT * FROM secret.keys'),
      msg.bind('', ''),
      msg.execute(),
      msg.parse('', 'SELECT 1'),
      msg.bind('', ''),
      msg.execute(),
      msg.sync(),
    );
    const r = await c.readyForQuery();
    expect(types(r)).toBe('12CEZ');
    expect(errorOf(r[3])).toMatchObject({ code: '42501', severity: 'ERROR' });
    expect(errorOf(r[3]).message).toContain('denied by rule "No secrets"');
    expect(statusOf(r)).toBe('I');
    await app.direct(async (d) => expect((await d.query("SELECT count(*)::int AS n FROM audit_log WHERE msg = 'pipelined'")).rows[0]).toEqual({ n: 0 }));
    // The session stays usable.
    c.send(msg.parse('', 'SELECT 2'), msg.bind('', ''), msg.execute(), msg.sync());
    expect(rowsOf(await c.readyForQuery())).toEqual([['2']]);
  });

  it('skips to a Sync that arrives in a later read', async () => {
    const c = await open();
    c.send(msg.parse('', 'TRUNCATE accounts'), msg.bind('', ''));
    await new Promise((r) => setTimeout(r, 50));
    c.send(msg.execute(), msg.parse('', 'SELECT 1'), msg.bind('', ''), msg.execute());
    await new Promise((r) => setTimeout(r, 50));
    c.send(msg.sync());
    const r = await c.readyForQuery();
    expect(types(r)).toBe('EZ');
    expect(errorOf(r[0]).code).toBe('42501');
    await app.direct(async (d) => expect((await d.query('SELECT count(*)::int AS n FROM accounts')).rows[0]).toEqual({ n: 10 }));
  });

  it('aborts an explicit transaction on a denial in the extended protocol (25P02 until ROLLBACK)', async () => {
    const c = await open();
    c.send(msg.query("BEGIN; INSERT INTO audit_log VALUES ('tx')"));
    expect(statusOf(await c.readyForQuery())).toBe('T');
    c.send(msg.parse('', 'TRUNCATE audit_log'), msg.bind('', ''), msg.execute(), msg.sync());
    const r = await c.readyForQuery();
    expect(types(r)).toBe('EZ');
    expect(errorOf(r[0]).code).toBe('42501');
    expect(statusOf(r)).toBe('E');
    c.send(msg.parse('', 'SELECT 1'), msg.bind('', ''), msg.execute(), msg.sync());
    const r2 = await c.readyForQuery();
    expect(errorOf(r2.find((m) => m.type === 'E')).code).toBe('25P02');
    c.send(msg.query('ROLLBACK'));
    expect(statusOf(await c.readyForQuery())).toBe('I');
    await app.direct(async (d) => expect((await d.query("SELECT count(*)::int AS n FROM audit_log WHERE msg = 'tx'")).rows[0]).toEqual({ n: 0 }));
  });

  it('reports only the first error of a batch: a denial after a real error is skipped by the backend', async () => {
    const c = await open();
    c.send(msg.parse('', 'SELECT 1/0'), msg.bind('', ''), msg.execute(), msg.parse('', 'SELECT * FROM secret.keys'), msg.bind('', ''), msg.execute(), msg.sync());
    const r = await c.readyForQuery();
    // 1/0 is folded when the plan is made, at Bind.
    expect(types(r)).toBe('1EZ');
    expect(errorOf(r[1]).code).toBe('22012');
    c.send(msg.query('SELECT 3'));
    expect(rowsOf(await c.readyForQuery())).toEqual([['3']]);
  });

  it('suspends and resumes a portal (Execute with a row limit) inside a transaction', async () => {
    const c = await open();
    c.send(msg.query('BEGIN'));
    await c.readyForQuery();
    c.send(msg.parse('', 'SELECT id FROM accounts ORDER BY id'), msg.bind('cur', ''), msg.execute('cur', 4), msg.sync());
    const r1 = await c.readyForQuery();
    expect(types(r1)).toBe('12DDDDsZ');
    c.send(msg.execute('cur', 100), msg.sync());
    const r2 = await c.readyForQuery();
    expect(rowsOf(r2).map((x) => x[0])).toEqual(['5', '6', '7', '8', '9', '10']);
    expect(tagsOf(r2)).toEqual(['SELECT 6']);
    c.send(msg.query('COMMIT'));
    expect(statusOf(await c.readyForQuery())).toBe('I');
  });

  it('describes a statement without running it', async () => {
    const c = await open();
    c.send(msg.parse('d1', 'SELECT id, name FROM accounts WHERE id = $1'), msg.describe('S', 'd1'), msg.sync());
    expect(types(await c.readyForQuery())).toBe('1tTZ');
  });

  it('flushes without Sync: a denied Parse answers at once, and the Flush is skipped like the rest', async () => {
    const c = await open();
    c.send(msg.parse('', 'SELECT k FROM secret.keys'), msg.flush());
    const e = await c.next();
    expect(e?.type).toBe('E');
    c.send(msg.sync());
    expect(types(await c.readyForQuery())).toBe('Z');
  });

  it('denies a FunctionCall message unless a policy allows it', async () => {
    const c = await open();
    const oid = await app.direct(async (d) => Number((await d.query("SELECT 'pg_catalog.int4abs(int4)'::regprocedure::oid AS oid")).rows[0]?.oid));
    c.send(msg.functionCall(oid, [Buffer.from('-5')]));
    const r = await c.readyForQuery();
    expect(types(r)).toBe('EZ');
    expect(errorOf(r[0]).code).toBe('42501');
    c.send(msg.query('SELECT 4'));
    expect(rowsOf(await c.readyForQuery())).toEqual([['4']]);
  });

  it('streams COPY both ways at the message level, and a CopyFail aborts the COPY', async () => {
    const c = await open();
    c.send(msg.query('COPY t (a, b) FROM STDIN'));
    const g = await c.next();
    expect(g?.type).toBe('G');
    for (let i = 0; i < 100; i += 1) c.send(msg.copyData(`${1000 + i}\t${i}\n`));
    c.send(msg.copyDone());
    const done = await c.readyForQuery();
    expect(tagsOf(done)).toEqual(['COPY 100']);
    c.send(msg.query('COPY (SELECT a FROM t WHERE a >= 1000 ORDER BY a) TO STDOUT'));
    const outRows = await c.readyForQuery();
    expect(types(outRows.slice(0, 2))).toBe('Hd');
    expect(outRows.filter((m) => m.type === 'd')).toHaveLength(100);
    expect(tagsOf(outRows)).toEqual(['COPY 100']);
    c.send(msg.query('COPY t (a, b) FROM STDIN'));
    expect((await c.next())?.type).toBe('G');
    c.send(msg.copyData('1\t1\n'), Buffer.from([0x66, 0, 0, 0, 9, 0x6e, 0x6f, 0x70, 0x65, 0]));
    const failed = await c.readyForQuery();
    expect(errorOf(failed.find((m) => m.type === 'E')).code).toBe('57014');
    const events = await proxy.fixture.events();
    expect(events.filter((e) => e.action === 'sql.result' && (e.details.tags as string[] | undefined)?.[0] === 'COPY 100')).toHaveLength(2);
  });

  it('runs a FunctionCall when a policy allows kind function_call explicitly', async () => {
    const fc = await startProxy({
      host: app.host,
      port: app.port,
      database: app.name,
      credentials: { kind: 'password', username: app.user, password: app.password },
      policies: [{ name: 'fastpath', rules: [{ id: 'fc', effect: 'allow', type: 'sql', kinds: ['function_call'] }] }],
    });
    try {
      const { client } = await WireClient.connect(fc.port, app.name);
      clients.push(client);
      const oid = await app.direct(async (d) => Number((await d.query("SELECT 'pg_catalog.int4abs(int4)'::regprocedure::oid AS oid")).rows[0]?.oid));
      client.send(msg.functionCall(oid, [Buffer.from('-5')]));
      const r = await client.readyForQuery();
      expect(types(r)).toBe('VZ');
      const v = r[0]?.body as Buffer;
      expect(v.subarray(4, 4 + v.readInt32BE(0)).toString()).toBe('5');
      client.close();
      await Promise.allSettled(fc.results);
      const events = await fc.fixture.events();
      expect(events.find((e) => e.action === 'sql.statement' && e.details.message === 'FunctionCall')).toMatchObject({ outcome: 'allowed', details: { functionOid: oid, kinds: ['function_call'] } });
    } finally {
      await fc.close();
    }
  });

  it('works with node-postgres: simple, extended, named prepared statements, binary results, notices, LISTEN/NOTIFY', async () => {
    await withPg({ host: '127.0.0.1', port: proxy.port, user: 'tester', database: app.name }, async (pg) => {
      expect((await pg.query('SELECT count(*)::int AS n FROM accounts')).rows).toEqual([{ n: 10 }]);
      expect((await pg.query('SELECT name FROM accounts WHERE id = $1', [7])).rows).toEqual([{ name: 'name7' }]);
      for (const id of [1, 2, 3]) {
        const r = await pg.query({ name: 'by-id', text: 'SELECT id, balance FROM accounts WHERE id = $1', values: [id] });
        expect(r.rows).toEqual([{ id, balance: 100 }]);
      }
      // A Buffer parameter travels in binary format; `binary: true` asks for binary results.
      const raw = Buffer.from([0, 255, 1, 0]);
      expect((await pg.query('SELECT $1::bytea AS b', [raw])).rows[0]?.b).toEqual(raw);
      // (node-postgres decodes binary fields as UTF-8 text unless the whole connection is binary: compare with a direct connection.)
      const binary = { text: 'SELECT $1::bytea AS b, 7::int4 AS i', values: [raw], binary: true };
      const direct = await app.direct((d) => d.query(binary));
      expect((await pg.query(binary)).rows).toEqual(direct.rows);
      const notices: string[] = [];
      pg.on('notice', (n) => notices.push(n.message));
      await pg.query('BEGIN');
      await pg.query('BEGIN');
      await pg.query('ROLLBACK');
      expect(notices.join()).toContain('already a transaction in progress');
      const got = new Promise<string | undefined>((resolve) => pg.on('notification', (n) => resolve(n.payload)));
      await pg.query('LISTEN chan');
      await app.direct((d) => d.query("NOTIFY chan, 'hello'"));
      expect(await got).toBe('hello');
      await expect(pg.query('SELECT * FROM secret.keys')).rejects.toMatchObject({ code: '42501' });
      await expect(pg.query('SELECT k FROM secret.keys WHERE k = $1', ['x'])).rejects.toMatchObject({ code: '42501' });
      expect((await pg.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });
  });
});
