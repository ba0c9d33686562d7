import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from '@pa/testing';
import { createPolicyEngine, type PolicyEngine } from './engine';
import type { StatementKind } from './schema';
import { initPolicyEngine } from './sql/parse';
import { corpusPolicy } from './corpus/fixtures';
import { SQL_CASES, type SqlCase } from './corpus/sql-cases';

/**
 * Differential test: for every SQL corpus case, the statements the engine
 * judges must be the statements PostgreSQL executes — same number, same
 * kinds, counted from the CommandComplete messages of the simple query
 * protocol, each case in a transaction that is rolled back.
 */

const SETUP = `
  CREATE SCHEMA secret;
  CREATE TABLE public.accounts (id int PRIMARY KEY, name text, email text, balance numeric DEFAULT 0);
  CREATE TABLE public.orders (id int PRIMARY KEY, account_id int, total numeric);
  CREATE TABLE public.t (a int PRIMARY KEY, b int);
  CREATE TABLE public.audit_log (id serial, msg text);
  CREATE TABLE public.passwords (u text, p text);
  CREATE TABLE secret.keys (k text);
  CREATE SEQUENCE public.s;
  CREATE VIEW public.v AS SELECT id, name FROM public.accounts;
  CREATE FUNCTION public.f(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1';
  CREATE PROCEDURE public.p(x int) LANGUAGE sql AS 'SELECT 1';
  INSERT INTO public.accounts VALUES (1, 'a', 'a@example.com', 10), (2, 'b', 'b@example.com', 20);
  INSERT INTO public.t VALUES (1, 1), (2, 2);
  INSERT INTO secret.keys VALUES ('k1');
  INSERT INTO public.passwords VALUES ('u', 'p');
`;

/** Engine kinds a CommandComplete tag can stand for. */
const KINDS_BY_TAG: Readonly<Record<string, readonly StatementKind[]>> = {
  SELECT: ['select', 'ddl'], // SELECT … INTO and CREATE TABLE AS report SELECT n
  INSERT: ['insert'],
  UPDATE: ['update'],
  DELETE: ['delete'],
  MERGE: ['merge'],
  COPY: ['copy_to', 'copy_from'],
  TRUNCATE: ['truncate'],
  'TRUNCATE TABLE': ['truncate'],
  GRANT: ['grant'],
  REVOKE: ['grant'],
  BEGIN: ['transaction'],
  'START TRANSACTION': ['transaction'],
  COMMIT: ['transaction'],
  ROLLBACK: ['transaction'],
  SAVEPOINT: ['transaction'],
  RELEASE: ['transaction'],
  'SET CONSTRAINTS': ['transaction'],
  SET: ['set', 'transaction'], // SET TRANSACTION reports SET
  RESET: ['reset'],
  SHOW: ['show'],
  CALL: ['call'],
  DO: ['do'],
  EXPLAIN: ['explain'],
  PREPARE: ['prepare'],
  DEALLOCATE: ['deallocate'],
  'DEALLOCATE ALL': ['deallocate'],
  LISTEN: ['listen'],
  NOTIFY: ['notify'],
  UNLISTEN: ['unlisten'],
  VACUUM: ['vacuum'],
  ANALYZE: ['analyze'],
  CLUSTER: ['vacuum'],
  REINDEX: ['vacuum'],
  'LOCK TABLE': ['lock'],
  'DISCARD ALL': ['discard'],
  'DISCARD TEMP': ['discard'],
  'DECLARE CURSOR': ['cursor'],
  FETCH: ['cursor'],
  MOVE: ['cursor'],
  'CLOSE CURSOR': ['cursor'],
  CHECKPOINT: ['utility'],
};

const DDL_TAG = /^(CREATE|ALTER|DROP|COMMENT|SECURITY LABEL|REFRESH MATERIALIZED VIEW|IMPORT FOREIGN SCHEMA|REASSIGN OWNED)\b/;

const kindsForTag = (tag: string): readonly StatementKind[] => {
  const word = tag.replace(/( \d+)+$/, '');
  return KINDS_BY_TAG[word] ?? (DDL_TAG.test(word) ? ['ddl'] : []);
};

let db: TestDatabase;
let client: Client;
let serverVersion: number;
let engine: PolicyEngine;
const tags: string[] = [];

beforeAll(async () => {
  await initPolicyEngine();
  engine = createPolicyEngine({ cache: false });
  db = await createTestDatabase();
  client = new Client({ connectionString: db.url });
  await client.connect();
  client.on('notice', () => undefined);
  client.on('notification', () => undefined);
  await client.query(SETUP);
  serverVersion = Number((await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v);
  client.connection.on('commandComplete', (msg: { text: string }) => tags.push(msg.text));
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
  await engine?.close();
});

/** Runs a case on PostgreSQL; returns the CommandComplete tags and the error, if any. */
const runOnPostgres = async (c: SqlCase): Promise<{ tags: string[]; code: string | undefined }> => {
  const wrap = c.pg !== 'no-tx';
  if (wrap) await client.query('BEGIN');
  tags.length = 0;
  let code: string | undefined;
  try {
    await client.query(c.sql);
  } catch (err) {
    code = (err as { code?: string }).code ?? 'unknown';
  }
  const seen = [...tags];
  // Ends whatever transaction is open (ours, or one the case began), undoing the case.
  await client.query('ROLLBACK');
  return { tags: seen, code };
};

const runnable = SQL_CASES.filter((c) => !(typeof c.pg === 'object' && 'skip' in c.pg));

describe('differential: the engine sees what PostgreSQL executes', () => {
  test('most of the corpus runs on PostgreSQL', () => {
    expect(runnable.length).toBeGreaterThan(SQL_CASES.length * 0.85);
  });

  test.each(runnable.map((c) => [`${c.class} | ${JSON.stringify(c.sql)}`, c] as const))('%s', async (_name, c) => {
    const decision = engine.evaluateSql(corpusPolicy('all'), c.sql);
    const pg = await runOnPostgres(c);
    if (c.pgSince !== undefined && serverVersion < c.pgSince) {
      // An older grammar refuses the syntax outright; the engine parses with the newest.
      expect(pg.code).toBe('42601');
      return;
    }
    if (typeof c.pg === 'object' && 'error' in c.pg) {
      expect(pg.code).toBe(c.pg.error);
      if (c.pg.error === '42601') {
        expect(decision.failure).toBe('parse_error');
        expect(decision.allowed).toBe(false);
      }
      return;
    }
    expect(pg.code).toBeUndefined();
    expect(decision.failure).toBeUndefined();
    const engineKinds = decision.statements.map((s) => s.kind);
    expect(engineKinds.length).toBe(pg.tags.length);
    decision.statements.forEach((s, i) => {
      const tag = pg.tags[i] as string;
      // EXECUTE reports the tag of the statement it runs (judged at PREPARE time).
      if (s.kind === 'execute') return;
      expect({ tag, kind: s.kind, ok: kindsForTag(tag).includes(s.kind) }).toEqual({ tag, kind: s.kind, ok: true });
    });
  });
});
