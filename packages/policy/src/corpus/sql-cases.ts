import type { StatementKind } from '../schema';
import type { CorpusPolicyName } from './policies';

/**
 * The SQL corpus: inputs with the decisions expected under the corpus
 * policies, and what the engine must see in them. Each case is also run on a
 * real PostgreSQL (in a rolled-back transaction) by the differential test,
 * which checks that the statements the engine judges are the statements
 * PostgreSQL executes.
 *
 * `class` names the bypass class of SECURITY.md (or the rule type) a case
 * exercises; the original port-authorizing (regexes on raw text) fails most
 * of the `bypass:*` cases.
 */
export interface SqlCase {
  readonly class: string;
  readonly sql: string;
  /** Expected decision under each named policy. */
  readonly expect: Partial<Record<CorpusPolicyName, 'allow' | 'deny'>>;
  /** Top-level kind of each statement (absent when the text must not parse). */
  readonly kinds?: readonly StatementKind[];
  /** Everything each statement does (its `kinds`), when it matters to the case. */
  readonly does?: readonly (readonly StatementKind[])[];
  /** Relations of each statement. */
  readonly relations?: readonly (readonly string[])[];
  /** Functions of each statement. */
  readonly functions?: readonly (readonly string[])[];
  /** Settings of each statement. */
  readonly settings?: readonly (readonly string[])[];
  /** A fragment every denial's reason must contain. */
  readonly reason?: string;
  /**
   * How the differential test runs it: inside a rolled-back transaction
   * (default), outside one (`no-tx`, for transaction control and commands that
   * refuse transaction blocks), expecting PostgreSQL to fail with a SQLSTATE,
   * or not at all (with why).
   */
  readonly pg?: 'no-tx' | { readonly error: string } | { readonly skip: string };
  /** Oldest server (server_version_num) whose grammar has this syntax; older ones must answer 42601. */
  readonly pgSince?: number;
}

const SYNTAX = { error: '42601' } as const;

export const SQL_CASES: readonly SqlCase[] = [
  // ── Multi-statement queries ─────────────────────────────────────────────
  { class: 'bypass:multi-statement', sql: 'SELECT 1; DROP TABLE t', kinds: ['select', 'ddl'], relations: [[], ['t']], expect: { ro: 'deny', rw: 'deny', all: 'allow', all_but_ddl: 'deny' } },
  { class: 'bypass:multi-statement', sql: 'SELECT * FROM accounts; DELETE FROM accounts', kinds: ['select', 'delete'], expect: { ro: 'deny', rw: 'allow', pattern: 'deny', all: 'allow' }, reason: 'statement 2 of 2' },
  { class: 'bypass:multi-statement', sql: 'SELECT 1;SELECT 2;SELECT 3', kinds: ['select', 'select', 'select'], expect: { ro: 'allow', ro_strict: 'allow', all: 'allow', do: 'deny' } },
  { class: 'bypass:multi-statement', sql: 'select 1;\n\n  update t set b = 2', kinds: ['select', 'update'], expect: { ro: 'deny', rw: 'allow' } },
  { class: 'bypass:multi-statement', sql: 'SELECT 1;;SELECT 2;', kinds: ['select', 'select'], expect: { ro: 'allow' } },
  { class: 'bypass:multi-statement', sql: 'SELECT * FROM accounts; TRUNCATE accounts', kinds: ['select', 'truncate'], expect: { ro: 'deny', rw: 'deny', all: 'allow', all_but_ddl: 'deny' } },
  { class: 'bypass:multi-statement', sql: 'SELECT 1\t;\tINSERT INTO t VALUES (9, 9)', kinds: ['select', 'insert'], expect: { ro: 'deny', rw: 'allow' } },
  { class: 'bypass:multi-statement', sql: 'SELECT 1; GRANT SELECT ON accounts TO PUBLIC', kinds: ['select', 'grant'], expect: { ro: 'deny', rw: 'deny', all: 'allow' } },
  { class: 'bypass:multi-statement', sql: 'SELECT name FROM accounts WHERE id = 1; DELETE FROM t', kinds: ['select', 'delete'], expect: { fp: 'deny', ro: 'deny' } },
  { class: 'empty', sql: ';', kinds: [], expect: { ro: 'allow', fp: 'allow' } },
  { class: 'empty', sql: '-- nothing but a comment', kinds: [], expect: { ro: 'allow' } },
  { class: 'empty', sql: ' ;; ', kinds: [], expect: { ro_strict: 'allow' } },

  // ── Comments ─────────────────────────────────────────────────────────────
  { class: 'bypass:comments', sql: 'SELECT 1 /* ; DROP TABLE t */', kinds: ['select'], expect: { ro: 'allow', all_but_ddl: 'allow' } },
  { class: 'bypass:comments', sql: 'SELECT 1 -- ; DROP TABLE t\n', kinds: ['select'], expect: { ro: 'allow', all_but_ddl: 'allow' } },
  { class: 'bypass:comments', sql: '/* harmless */ DELETE FROM t', kinds: ['delete'], relations: [['t']], expect: { ro: 'deny', rw: 'allow' } },
  { class: 'bypass:comments', sql: 'SELECT 1 /* outer /* nested */ ; DROP TABLE t; */', kinds: ['select'], expect: { ro: 'allow', all_but_ddl: 'allow' } },
  { class: 'bypass:comments', sql: 'SELECT 1 /* outer /* nested */ ; DROP TABLE t', expect: { ro: 'deny', all: 'deny' }, reason: 'parse error', pg: SYNTAX },
  { class: 'bypass:comments', sql: 'DELETE/**/FROM/**/t', kinds: ['delete'], expect: { ro: 'deny', rw: 'allow' } },
  { class: 'bypass:comments', sql: 'DR/**/OP TABLE t', expect: { all: 'deny' }, pg: SYNTAX },
  { class: 'bypass:comments', sql: '-- SELECT 1\nDROP TABLE t', kinds: ['ddl'], expect: { ro: 'deny', all: 'allow', all_but_ddl: 'deny' } },
  { class: 'bypass:comments', sql: 'drop /* x */ table t', kinds: ['ddl'], expect: { all_but_ddl: 'deny' } },
  { class: 'bypass:comments', sql: 'SELECT * FROM accounts /* FROM secret.keys */', kinds: ['select'], relations: [['accounts']], expect: { ro: 'allow' } },
  { class: 'bypass:comments', sql: 'SELECT * FROM /* accounts */ secret.keys', kinds: ['select'], relations: [['secret.keys']], expect: { ro: 'deny', pattern: 'deny' } },

  // ── Quoting: strings, dollar quotes, identifiers ─────────────────────────
  { class: 'bypass:dollar-quotes', sql: 'SELECT $$; DROP TABLE t; $$', kinds: ['select'], relations: [[]], expect: { ro: 'allow', all_but_ddl: 'deny' } },
  { class: 'bypass:dollar-quotes', sql: 'SELECT $a$ $$ ; $a$; DELETE FROM t', kinds: ['select', 'delete'], expect: { ro: 'deny', rw: 'allow' } },
  { class: 'bypass:dollar-quotes', sql: "SELECT $tag$it''s; DELETE FROM t$tag$", kinds: ['select'], expect: { ro: 'allow' } },
  { class: 'bypass:dollar-quotes', sql: 'SELECT $1$x$1$', expect: { ro: 'deny' }, pg: SYNTAX },
  { class: 'bypass:strings', sql: "SELECT 'it''s; DROP TABLE t'", kinds: ['select'], expect: { ro: 'allow' } },
  { class: 'bypass:strings', sql: "SELECT '\\'; DROP TABLE t; --'", kinds: ['select', 'ddl'], expect: { ro: 'deny', all: 'allow', all_but_ddl: 'deny' } },
  { class: 'bypass:strings', sql: "SELECT E'\\'; DROP TABLE t; --'", kinds: ['select'], expect: { ro: 'allow' } },
  { class: 'bypass:strings', sql: "SELECT U&'d\\0061t\\+000061'", kinds: ['select'], expect: { ro: 'allow' } },
  { class: 'bypass:strings', sql: "SELECT 'a' 'b'", expect: { ro: 'deny' }, pg: SYNTAX },
  { class: 'bypass:identifiers', sql: 'SELECT * FROM "secret"."keys"', kinds: ['select'], relations: [['secret.keys']], expect: { ro: 'deny', rw: 'deny', all: 'allow' } },
  { class: 'bypass:identifiers', sql: 'SELECT * FROM SECRET.KEYS', kinds: ['select'], relations: [['secret.keys']], expect: { ro: 'deny', rw: 'deny' } },
  { class: 'bypass:identifiers', sql: 'SELECT * FROM public."accounts"', kinds: ['select'], relations: [['public.accounts']], expect: { ro: 'allow', ro_strict: 'allow' } },
  { class: 'bypass:identifiers', sql: 'SELECT * FROM "Accounts"', kinds: ['select'], relations: [['"Accounts"']], expect: { ro: 'allow', ro_strict: 'deny' }, pg: { error: '42P01' } },
  { class: 'bypass:identifiers', sql: 'sElEcT * FrOm PuBlIc.AcCoUnTs', kinds: ['select'], relations: [['public.accounts']], expect: { ro: 'allow', ro_strict: 'allow', pattern: 'deny' } },
  { class: 'bypass:identifiers', sql: 'SELECT * FROM public . accounts', kinds: ['select'], relations: [['public.accounts']], expect: { ro_strict: 'allow' } },
  { class: 'bypass:identifiers', sql: 'SELECT * FROM U&"p\\0061sswords"', kinds: ['select'], relations: [['passwords']], expect: { ro: 'deny', all: 'allow' }, reason: 'no-secrets' },

  // ── Data-modifying CTEs and nesting ──────────────────────────────────────
  { class: 'bypass:dml-cte', sql: 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', kinds: ['select'], does: [['select', 'delete']], relations: [['t']], expect: { ro: 'deny', rw: 'allow', explain: 'deny' } },
  { class: 'bypass:dml-cte', sql: 'WITH u AS (UPDATE accounts SET balance = 0 RETURNING id) SELECT count(*) FROM u', kinds: ['select'], does: [['select', 'update']], expect: { ro: 'deny', rw: 'allow', pattern: 'deny' } },
  { class: 'bypass:dml-cte', sql: 'WITH a AS (SELECT 1), b AS (INSERT INTO t VALUES (5, 5) RETURNING *) SELECT * FROM a, b', kinds: ['select'], does: [['select', 'insert']], expect: { ro: 'deny', rw: 'allow' } },
  { class: 'bypass:dml-cte', sql: 'WITH x AS (WITH y AS (DELETE FROM t RETURNING a) SELECT a FROM y) SELECT * FROM x', kinds: ['select'], does: [['select', 'delete']], expect: { ro: 'deny' }, pg: { error: '0A000' } },
  { class: 'bypass:dml-cte', sql: 'SELECT * FROM (WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d) s', kinds: ['select'], does: [['select', 'delete']], expect: { ro: 'deny' }, pg: { error: '0A000' } },
  { class: 'bypass:dml-cte', sql: 'WITH m AS (MERGE INTO t USING accounts ON t.a = accounts.id WHEN MATCHED THEN DELETE RETURNING t.a) SELECT * FROM m', kinds: ['select'], does: [['select', 'merge']], expect: { ro: 'deny', rw: 'deny', all: 'allow' }, pgSince: 170000 },
  { class: 'bypass:dml-cte', sql: 'WITH d AS (DELETE FROM t RETURNING *) INSERT INTO audit_log(msg) SELECT a::text FROM d', kinds: ['insert'], does: [['insert', 'delete']], relations: [['audit_log', 't']], expect: { ro: 'deny', rw: 'allow' } },
  { class: 'bypass:cte-scope', sql: 'WITH t AS (SELECT 1 AS a) DELETE FROM t', kinds: ['delete'], relations: [['t']], expect: { ro: 'deny', rw: 'allow' } },
  { class: 'bypass:cte-scope', sql: 'WITH passwords AS (SELECT 1 AS x) SELECT * FROM passwords', kinds: ['select'], relations: [[]], expect: { ro: 'allow', ro_strict: 'allow' } },
  { class: 'bypass:cte-scope', sql: 'SELECT * FROM passwords, (WITH passwords AS (SELECT 1 AS x) SELECT * FROM passwords) s', kinds: ['select'], relations: [['passwords']], expect: { ro: 'deny', all: 'allow' }, reason: 'no-secrets' },
  { class: 'bypass:cte-scope', sql: 'WITH keys AS (SELECT 1) SELECT * FROM secret.keys', kinds: ['select'], relations: [['secret.keys']], expect: { ro: 'deny', rw: 'deny' } },
  { class: 'bypass:cte-scope', sql: 'WITH a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a', kinds: ['select'], relations: [['b']], expect: { ro: 'allow', ro_strict: 'deny' }, pg: { error: '42P01' } },
  { class: 'bypass:cte-scope', sql: 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r', kinds: ['select'], relations: [[]], expect: { ro: 'allow', ro_strict: 'allow' } },
  { class: 'bypass:nesting', sql: 'SELECT * FROM accounts WHERE name IN (SELECT k FROM secret.keys)', kinds: ['select'], relations: [['accounts', 'secret.keys']], expect: { ro: 'deny', rw: 'deny', all: 'allow' } },
  { class: 'bypass:nesting', sql: 'SELECT (SELECT max(p) FROM passwords) FROM accounts', kinds: ['select'], relations: [['accounts', 'passwords']], expect: { ro: 'deny', rw: 'allow' } },
  { class: 'bypass:nesting', sql: 'SELECT * FROM accounts a JOIN LATERAL (SELECT * FROM secret.keys) k ON true', kinds: ['select'], relations: [['accounts', 'secret.keys']], expect: { ro: 'deny' } },
  { class: 'bypass:nesting', sql: 'SELECT 1 UNION SELECT count(*) FROM secret.keys', kinds: ['select'], relations: [['secret.keys']], expect: { ro: 'deny' } },
  { class: 'bypass:nesting', sql: 'SELECT EXISTS (SELECT 1 FROM secret.keys)', kinds: ['select'], relations: [['secret.keys']], expect: { ro: 'deny' } },
  { class: 'bypass:nesting', sql: 'INSERT INTO audit_log(msg) SELECT k FROM secret.keys', kinds: ['insert'], relations: [['audit_log', 'secret.keys']], expect: { rw: 'deny', ro: 'deny', all: 'allow' } },
  { class: 'bypass:nesting', sql: 'UPDATE accounts SET name = s.k FROM secret.keys s', kinds: ['update'], relations: [['accounts', 'secret.keys']], expect: { rw: 'deny' } },
  { class: 'bypass:nesting', sql: 'DELETE FROM t USING secret.keys', kinds: ['delete'], relations: [['secret.keys', 't']], expect: { rw: 'deny' } },
  { class: 'bypass:nesting', sql: 'SELECT * FROM accounts ORDER BY (SELECT count(*) FROM passwords)', kinds: ['select'], relations: [['accounts', 'passwords']], expect: { ro: 'deny', rw: 'allow' } },
  { class: 'bypass:nesting', sql: 'TABLE secret.keys', kinds: ['select'], relations: [['secret.keys']], expect: { ro: 'deny', all: 'allow' } },
  { class: 'bypass:nesting', sql: 'SELECT * FROM (VALUES (1), (2)) v(x)', kinds: ['select'], relations: [[]], expect: { ro: 'allow', ro_strict: 'allow' } },
  { class: 'bypass:nesting', sql: 'SELECT * FROM v', kinds: ['select'], relations: [['v']], expect: { ro: 'allow', ro_strict: 'deny' } },

  // ── EXPLAIN ──────────────────────────────────────────────────────────────
  { class: 'bypass:explain-analyze', sql: 'EXPLAIN ANALYZE DELETE FROM t', kinds: ['explain'], does: [['delete', 'explain']], expect: { explain: 'deny', all: 'allow', ro: 'deny' } },
  { class: 'bypass:explain-analyze', sql: 'EXPLAIN (ANALYZE, FORMAT JSON) UPDATE t SET b = 1', kinds: ['explain'], does: [['update', 'explain']], expect: { explain: 'deny' } },
  { class: 'bypass:explain-analyze', sql: 'EXPLAIN (ANALYZE true) INSERT INTO t VALUES (7, 7)', kinds: ['explain'], does: [['insert', 'explain']], expect: { explain: 'deny' } },
  { class: 'bypass:explain-analyze', sql: 'EXPLAIN ANALYZE SELECT * FROM accounts', kinds: ['explain'], does: [['select', 'explain']], expect: { explain: 'allow', ro: 'deny' } },
  { class: 'bypass:explain-analyze', sql: 'EXPLAIN ANALYZE WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', kinds: ['explain'], does: [['select', 'delete', 'explain']], expect: { explain: 'deny' } },
  { class: 'bypass:explain-analyze', sql: 'EXPLAIN ANALYZE CREATE TABLE ex AS SELECT 1 AS x', kinds: ['explain'], does: [['ddl', 'insert', 'explain']], expect: { explain: 'deny', all: 'allow' } },
  { class: 'explain', sql: 'EXPLAIN DELETE FROM t', kinds: ['explain'], does: [['explain']], relations: [['t']], expect: { explain: 'allow', ro: 'deny' } },
  { class: 'explain', sql: 'EXPLAIN (ANALYZE false) DELETE FROM t', kinds: ['explain'], does: [['explain']], expect: { explain: 'allow' } },
  { class: 'explain', sql: 'EXPLAIN SELECT * FROM secret.keys', kinds: ['explain'], relations: [['secret.keys']], expect: { explain: 'deny' } },
  { class: 'explain', sql: 'EXPLAIN SELECT pg_sleep(10)', kinds: ['explain'], functions: [['pg_sleep']], expect: { explain: 'deny' }, reason: 'denied by default' },

  // ── COPY ─────────────────────────────────────────────────────────────────
  { class: 'bypass:copy', sql: 'COPY accounts TO STDOUT', kinds: ['copy_to'], relations: [['accounts']], expect: { copy: 'allow', rw: 'allow', ro: 'deny' } },
  { class: 'bypass:copy', sql: 'COPY (SELECT * FROM accounts) TO STDOUT', kinds: ['copy_to'], relations: [['accounts']], expect: { copy: 'allow', rw: 'allow' } },
  { class: 'bypass:copy', sql: 'COPY (SELECT * FROM secret.keys) TO STDOUT', kinds: ['copy_to'], relations: [['secret.keys']], expect: { copy: 'deny', rw: 'deny', all: 'allow' } },
  { class: 'bypass:copy', sql: 'COPY (DELETE FROM accounts RETURNING *) TO STDOUT', kinds: ['copy_to'], does: [['delete', 'copy_to']], expect: { copy: 'deny', rw: 'deny', all: 'allow' } },
  { class: 'bypass:copy', sql: 'COPY (UPDATE accounts SET balance = 1 RETURNING id) TO STDOUT (FORMAT csv)', kinds: ['copy_to'], does: [['update', 'copy_to']], expect: { copy: 'deny' } },
  { class: 'bypass:copy', sql: 'COPY t TO STDOUT', kinds: ['copy_to'], relations: [['t']], expect: { copy: 'deny', rw: 'deny' } },
  { class: 'bypass:copy', sql: 'COPY accounts FROM STDIN', kinds: ['copy_from'], relations: [['accounts']], expect: { copy: 'allow', rw: 'deny' }, pg: { skip: 'COPY FROM STDIN needs a copy-in stream' } },
  { class: 'bypass:copy-program', sql: "COPY accounts TO PROGRAM 'cat > /dev/null'", kinds: ['copy_to'], expect: { copy: 'deny', all: 'deny' }, reason: 'PROGRAM', pg: { skip: 'would run a program on the server' } },
  { class: 'bypass:copy-program', sql: "COPY accounts FROM PROGRAM 'cat /etc/passwd'", kinds: ['copy_from'], expect: { copy: 'deny', all: 'deny' }, reason: 'PROGRAM', pg: { skip: 'would run a program on the server' } },
  { class: 'bypass:copy-program', sql: "SELECT 1; COPY (SELECT 1) TO PROGRAM 'true'", kinds: ['select', 'copy_to'], expect: { all: 'deny' }, reason: 'PROGRAM', pg: { skip: 'would run a program on the server' } },
  { class: 'bypass:copy-file', sql: "COPY accounts FROM '/etc/passwd'", kinds: ['copy_from'], expect: { copy: 'deny', all: 'deny' }, reason: 'server file', pg: { skip: 'reads a server file' } },
  { class: 'bypass:copy-file', sql: "COPY accounts TO '/tmp/pa-corpus-out'", kinds: ['copy_to'], expect: { copy: 'deny', all: 'deny' }, reason: 'server file', pg: { skip: 'writes a server file' } },

  // ── SELECT INTO / CREATE TABLE AS ────────────────────────────────────────
  { class: 'bypass:select-into', sql: 'SELECT * INTO newt FROM accounts', kinds: ['select'], does: [['select', 'insert', 'ddl']], relations: [['accounts', 'newt']], expect: { ro: 'deny', rw: 'deny', all: 'allow', all_but_ddl: 'deny' } },
  { class: 'bypass:select-into', sql: 'SELECT 1 AS x INTO TEMP tmp1', kinds: ['select'], does: [['select', 'insert', 'ddl']], expect: { ro: 'deny', ro_strict: 'deny' } },
  { class: 'bypass:select-into', sql: 'CREATE TABLE copy_of AS SELECT * FROM accounts', kinds: ['ddl'], does: [['insert', 'ddl']], relations: [['accounts', 'copy_of']], expect: { ro: 'deny', all: 'allow', all_but_ddl: 'deny' } },
  { class: 'bypass:select-into', sql: 'CREATE TABLE empty_copy AS SELECT * FROM accounts WITH NO DATA', kinds: ['ddl'], does: [['ddl']], expect: { ro: 'deny', all: 'allow' } },
  { class: 'bypass:select-into', sql: 'CREATE MATERIALIZED VIEW mv AS SELECT * FROM secret.keys', kinds: ['ddl'], relations: [['mv', 'secret.keys']], expect: { rw: 'deny', all: 'allow' } },

  // ── Functions in every position ──────────────────────────────────────────
  { class: 'bypass:functions', sql: "SELECT pg_read_file('PG_VERSION')", kinds: ['select'], functions: [['pg_read_file']], expect: { ro: 'deny', all: 'deny', sleep: 'deny' }, reason: 'denied by default' },
  { class: 'bypass:functions', sql: "SELECT pg_catalog.pg_read_file('PG_VERSION')", kinds: ['select'], functions: [['pg_catalog.pg_read_file']], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT PG_READ_FILE('PG_VERSION')", kinds: ['select'], functions: [['pg_read_file']], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT \"pg_read_file\"('PG_VERSION')", kinds: ['select'], functions: [['pg_read_file']], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT * FROM accounts WHERE pg_read_file('PG_VERSION') IS NOT NULL", kinds: ['select'], functions: [['pg_read_file']], expect: { ro: 'deny', all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT * FROM accounts ORDER BY length(pg_read_file('PG_VERSION'))", kinds: ['select'], functions: [['length', 'pg_read_file']], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT * FROM pg_ls_dir('.') AS f", kinds: ['select'], functions: [['pg_ls_dir']], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT * FROM accounts, LATERAL pg_ls_dir('.') AS f", kinds: ['select'], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT count(*) FILTER (WHERE pg_sleep(0) IS NULL) FROM accounts", kinds: ['select'], functions: [['count', 'pg_sleep']], expect: { ro: 'deny', sleep: 'allow', fnlist: 'deny' } },
  { class: 'bypass:functions', sql: 'SELECT pg_sleep(0)', kinds: ['select'], expect: { ro: 'deny', sleep: 'allow', all: 'deny' } },
  { class: 'bypass:functions', sql: 'SELECT pg_catalog.pg_sleep(0)', kinds: ['select'], expect: { sleep: 'allow', all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT lo_import('/etc/hostname')", kinds: ['select'], expect: { all: 'deny' }, pg: { skip: 'depends on a server file' } },
  { class: 'bypass:functions', sql: "SELECT query_to_xml('SELECT * FROM secret.keys', true, true, '')", kinds: ['select'], functions: [['query_to_xml']], expect: { all: 'deny', ro: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT table_to_xml('secret.keys', true, true, '')", kinds: ['select'], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT ts_stat('SELECT to_tsvector(k) FROM secret.keys')", kinds: ['select'], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT dblink('host=evil', 'SELECT 1')", kinds: ['select'], functions: [['dblink']], expect: { all: 'deny' }, pg: { skip: 'dblink is not installed' } },
  { class: 'bypass:functions', sql: 'SELECT pg_terminate_backend(1)', kinds: ['select'], expect: { all: 'deny' }, pg: { skip: 'signals server processes' } },
  { class: 'bypass:functions', sql: 'SELECT pg_reload_conf()', kinds: ['select'], expect: { all: 'deny' }, pg: { skip: 'reloads the server configuration' } },
  { class: 'bypass:functions', sql: 'INSERT INTO t VALUES (length(pg_read_file(\'PG_VERSION\')), 1)', kinds: ['insert'], expect: { rw: 'deny', all: 'deny' } },
  { class: 'bypass:functions', sql: "UPDATE t SET b = length(pg_read_file('PG_VERSION'))", kinds: ['update'], expect: { rw: 'deny' } },
  { class: 'bypass:functions', sql: "DELETE FROM t RETURNING pg_read_file('PG_VERSION')", kinds: ['delete'], expect: { rw: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT CASE WHEN true THEN pg_read_file('PG_VERSION') END", kinds: ['select'], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT a FROM t GROUP BY a HAVING length(pg_read_file('PG_VERSION')) > 0", kinds: ['select'], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT * FROM accounts a JOIN t ON pg_read_file('PG_VERSION') IS NOT NULL", kinds: ['select'], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT row_number() OVER (ORDER BY pg_read_file('PG_VERSION')) FROM t", kinds: ['select'], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "CREATE TABLE d1 (x text DEFAULT pg_read_file('PG_VERSION'))", kinds: ['ddl'], functions: [['pg_read_file']], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "CREATE TABLE d2 (x text CHECK (pg_read_file('PG_VERSION') IS NOT NULL))", kinds: ['ddl'], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT * FROM ROWS FROM (pg_ls_dir('.')) AS r", kinds: ['select'], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "VALUES (pg_read_file('PG_VERSION'))", kinds: ['select'], expect: { all: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT set_config('search_path', 'secret', false)", kinds: ['select'], does: [['select', 'set']], settings: [['search_path']], expect: { all: 'deny', setter: 'deny' } },
  { class: 'bypass:functions', sql: "SELECT set_config('app.tenant', '42', false)", kinds: ['select'], does: [['select', 'set']], settings: [['app.tenant']], expect: { all: 'deny', setter: 'allow' } },
  { class: 'bypass:functions', sql: "SELECT set_config('standard_conforming_strings', 'off', false)", kinds: ['select'], expect: { setter: 'deny', all: 'deny' }, reason: 'standard_conforming_strings' },
  { class: 'bypass:functions', sql: "SELECT current_setting('app.tenant', true)", kinds: ['select'], does: [['select', 'show']], settings: [['app.tenant']], expect: { setter: 'allow', ro: 'deny', all: 'allow' } },
  { class: 'bypass:functions', sql: "SELECT pg_notify('chan', 'x')", kinds: ['select'], does: [['select', 'notify']], expect: { ro: 'deny', all: 'allow' } },
  { class: 'bypass:functions', sql: "SELECT nextval('secret_seq')", kinds: ['select'], relations: [['secret_seq']], expect: { ro: 'allow', ro_strict: 'deny' }, pg: { error: '42P01' } },
  { class: 'bypass:functions', sql: "SELECT nextval('s')", kinds: ['select'], relations: [['s']], functions: [['nextval']], expect: { ro: 'allow', ro_strict: 'deny' } },
  { class: 'functions', sql: 'SELECT lower(name), count(*) FROM accounts GROUP BY 1', kinds: ['select'], functions: [['count', 'lower']], expect: { fnlist: 'allow', ro: 'allow' } },
  { class: 'functions', sql: 'SELECT md5(name) FROM accounts', kinds: ['select'], expect: { fnlist: 'deny', ro: 'allow' }, reason: 'md5' },
  { class: 'functions', sql: 'SELECT public.f(1)', kinds: ['select'], functions: [['public.f']], expect: { fnlist: 'allow' } },
  { class: 'functions', sql: 'SELECT f(1)', kinds: ['select'], functions: [['f']], expect: { fnlist: 'deny', ro: 'allow' } },
  { class: 'functions', sql: 'SELECT now()', kinds: ['select'], expect: { fnlist: 'allow' } },

  // ── DO and CALL ──────────────────────────────────────────────────────────
  { class: 'bypass:do', sql: 'DO $$BEGIN PERFORM 1; END$$', kinds: ['do'], expect: { do: 'allow', all: 'deny', ro: 'deny', rw: 'deny' } },
  { class: 'bypass:do', sql: "DO $$BEGIN EXECUTE 'DELETE FROM t'; END$$", kinds: ['do'], expect: { do: 'allow', all: 'deny' } },
  { class: 'bypass:do', sql: "DO LANGUAGE plpgsql 'BEGIN PERFORM 1; END'", kinds: ['do'], expect: { do: 'allow', all: 'deny' } },
  { class: 'bypass:do', sql: 'SELECT 1; DO $$BEGIN PERFORM 1; END$$', kinds: ['select', 'do'], expect: { do: 'deny', ro: 'deny' } },
  { class: 'call', sql: 'CALL p(1)', kinds: ['call'], functions: [['p']], expect: { all: 'allow', ro: 'deny', do: 'deny' } },
  { class: 'call', sql: 'CALL public.p(pg_backend_pid())', kinds: ['call'], functions: [['pg_backend_pid', 'public.p']], expect: { all: 'allow', fnlist: 'deny' } },

  // ── SET / RESET / SHOW ───────────────────────────────────────────────────
  { class: 'bypass:set', sql: 'SET search_path = secret, public', kinds: ['set'], settings: [['search_path']], expect: { ro: 'deny', rw: 'deny', setter: 'allow' } },
  { class: 'bypass:set', sql: "SET LOCAL statement_timeout = '5s'", kinds: ['set'], settings: [['statement_timeout']], expect: { rw: 'allow', ro: 'deny' } },
  { class: 'bypass:set', sql: 'SET application_name TO demo', kinds: ['set'], expect: { rw: 'allow' } },
  { class: 'bypass:set', sql: "SET TIME ZONE 'UTC'", kinds: ['set'], settings: [['timezone']], expect: { rw: 'allow' } },
  { class: 'bypass:set', sql: 'SET work_mem = \'1GB\'', kinds: ['set'], expect: { rw: 'deny', setter: 'allow' } },
  { class: 'bypass:set', sql: 'RESET ALL', kinds: ['reset'], settings: [['all']], expect: { rw: 'deny', setter: 'allow' } },
  { class: 'bypass:set', sql: 'RESET statement_timeout', kinds: ['reset'], expect: { rw: 'allow' } },
  { class: 'bypass:set', sql: "SET client_encoding = 'LATIN1'", kinds: ['set'], expect: { setter: 'deny', all: 'deny' }, reason: 'client_encoding' },
  { class: 'bypass:set', sql: "SET NAMES 'SQL_ASCII'", kinds: ['set'], expect: { setter: 'deny', all: 'deny' }, reason: 'client_encoding' },
  { class: 'bypass:set', sql: "SET client_encoding = 'UTF8'", kinds: ['set'], expect: { setter: 'allow' } },
  { class: 'bypass:set', sql: 'SET standard_conforming_strings = off', kinds: ['set'], expect: { setter: 'deny', all: 'deny' }, reason: 'standard_conforming_strings' },
  { class: 'bypass:set', sql: 'SET standard_conforming_strings TO false', kinds: ['set'], expect: { setter: 'deny' }, reason: 'standard_conforming_strings' },
  { class: 'bypass:set', sql: 'SET standard_conforming_strings = on', kinds: ['set'], expect: { setter: 'allow', rw: 'deny' } },
  { class: 'bypass:set', sql: 'SET ROLE postgres', kinds: ['set'], settings: [['role']], expect: { setter: 'deny', all: 'allow' } },
  { class: 'bypass:set', sql: 'SET SESSION AUTHORIZATION postgres', kinds: ['set'], settings: [['session_authorization']], expect: { setter: 'deny' } },
  { class: 'bypass:set', sql: 'SHOW search_path', kinds: ['show'], settings: [['search_path']], expect: { setter: 'allow', rw: 'deny', ro: 'deny' } },
  { class: 'bypass:set', sql: 'SHOW timezone', kinds: ['show'], expect: { rw: 'allow' } },
  { class: 'bypass:set', sql: 'SHOW ALL', kinds: ['show'], settings: [['all']], expect: { rw: 'deny', setter: 'allow' } },
  { class: 'bypass:set', sql: 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', kinds: ['transaction'], expect: { ro: 'allow', rw: 'allow' } },
  { class: 'bypass:set', sql: "ALTER SYSTEM SET log_statement = 'none'", kinds: ['ddl'], settings: [['log_statement']], expect: { rw: 'deny', setter: 'deny' }, pg: { skip: 'ALTER SYSTEM cannot run in a transaction and changes the server' } },

  // ── PREPARE / EXECUTE ────────────────────────────────────────────────────
  { class: 'bypass:prepare', sql: 'PREPARE q1 AS DELETE FROM t', kinds: ['prepare'], does: [['delete', 'prepare']], relations: [['t']], expect: { prep: 'deny', rw: 'deny', all: 'allow' } },
  { class: 'bypass:prepare', sql: 'PREPARE q2(int) AS SELECT * FROM accounts WHERE id = $1', kinds: ['prepare'], does: [['select', 'prepare']], expect: { prep: 'allow', ro: 'deny' } },
  { class: 'bypass:prepare', sql: 'PREPARE q3 AS SELECT * FROM secret.keys', kinds: ['prepare'], expect: { prep: 'deny' } },
  { class: 'bypass:prepare', sql: 'PREPARE q4 AS SELECT 1; EXECUTE q4; DEALLOCATE q4', kinds: ['prepare', 'execute', 'deallocate'], expect: { prep: 'allow', ro: 'deny' } },
  { class: 'bypass:prepare', sql: 'PREPARE q5 AS SELECT 1; EXECUTE q5(pg_sleep(0))', kinds: ['prepare', 'execute'], expect: { prep: 'deny' } },
  { class: 'bypass:prepare', sql: 'EXECUTE some_name', kinds: ['execute'], expect: { prep: 'allow', ro: 'deny', all: 'allow' }, pg: { error: '26000' } },
  { class: 'bypass:prepare', sql: 'DEALLOCATE ALL', kinds: ['deallocate'], expect: { prep: 'allow', session: 'allow', ro: 'deny' } },

  // ── Transaction control ──────────────────────────────────────────────────
  { class: 'transaction', sql: 'BEGIN; SELECT * FROM accounts; COMMIT', kinds: ['transaction', 'select', 'transaction'], expect: { ro: 'allow', ro_strict: 'deny', rw: 'allow' }, pg: 'no-tx' },
  { class: 'transaction', sql: 'BEGIN; DELETE FROM t; ROLLBACK', kinds: ['transaction', 'delete', 'transaction'], expect: { ro: 'deny', rw: 'allow' }, pg: 'no-tx' },
  { class: 'transaction', sql: 'START TRANSACTION READ ONLY; ROLLBACK', kinds: ['transaction', 'transaction'], expect: { ro: 'allow', session: 'deny' }, pg: 'no-tx' },
  { class: 'transaction', sql: 'SAVEPOINT s1; SELECT 1; RELEASE SAVEPOINT s1', kinds: ['transaction', 'select', 'transaction'], expect: { ro: 'allow' } },
  { class: 'transaction', sql: 'SAVEPOINT s2; ROLLBACK TO SAVEPOINT s2', kinds: ['transaction', 'transaction'], expect: { ro: 'allow', setter: 'deny' } },
  { class: 'transaction', sql: 'SET CONSTRAINTS ALL DEFERRED', kinds: ['transaction'], expect: { ro: 'allow' } },
  { class: 'transaction', sql: 'BEGIN; COMMIT; DROP TABLE t', kinds: ['transaction', 'transaction', 'ddl'], expect: { ro: 'deny', all_but_ddl: 'deny', all: 'allow' }, pg: { skip: 'would drop a table outside a transaction' } },

  // ── Unqualified names and search_path ────────────────────────────────────
  { class: 'bypass:unqualified', sql: 'SELECT * FROM accounts', kinds: ['select'], relations: [['accounts']], expect: { ro: 'allow', ro_strict: 'deny', pattern: 'allow', fp: 'deny' } },
  { class: 'bypass:unqualified', sql: 'SELECT * FROM public.accounts', kinds: ['select'], relations: [['public.accounts']], expect: { ro: 'allow', ro_strict: 'allow', pattern: 'deny' } },
  { class: 'bypass:unqualified', sql: 'SELECT rolname, rolpassword FROM pg_authid', kinds: ['select'], relations: [['pg_authid']], expect: { ro: 'deny', ro_strict: 'deny', all: 'allow' } },
  { class: 'bypass:unqualified', sql: 'SELECT * FROM pg_catalog.pg_authid', kinds: ['select'], relations: [['pg_catalog.pg_authid']], expect: { ro: 'deny' } },
  { class: 'bypass:unqualified', sql: 'SELECT usename FROM pg_user', kinds: ['select'], expect: { ro: 'deny' } },
  { class: 'bypass:unqualified', sql: 'SELECT table_name FROM information_schema.tables', kinds: ['select'], relations: [['information_schema.tables']], expect: { ro: 'deny', all: 'allow' } },
  { class: 'bypass:unqualified', sql: 'SELECT * FROM passwords', kinds: ['select'], relations: [['passwords']], expect: { ro: 'deny', rw: 'allow' }, reason: 'no-secrets' },
  { class: 'bypass:unqualified', sql: 'SELECT * FROM public.passwords', kinds: ['select'], expect: { ro: 'deny', rw: 'allow' } },

  // ── Other statement kinds ────────────────────────────────────────────────
  { class: 'kinds', sql: 'INSERT INTO t VALUES (3, 3) ON CONFLICT (a) DO UPDATE SET b = 0', kinds: ['insert'], does: [['insert', 'update']], expect: { rw: 'allow', ro: 'deny' } },
  { class: 'kinds', sql: 'INSERT INTO t VALUES (3, 3) ON CONFLICT DO NOTHING', kinds: ['insert'], does: [['insert']], expect: { rw: 'allow' } },
  { class: 'kinds', sql: 'MERGE INTO t USING accounts a ON t.a = a.id WHEN MATCHED THEN UPDATE SET b = 1 WHEN NOT MATCHED THEN INSERT VALUES (a.id, 0)', kinds: ['merge'], relations: [['accounts', 't']], expect: { rw: 'deny', all: 'allow' } },
  { class: 'kinds', sql: 'SELECT * FROM accounts FOR UPDATE', kinds: ['select'], does: [['select', 'lock']], expect: { ro: 'deny', rw: 'allow' } },
  { class: 'kinds', sql: 'SELECT * FROM accounts FOR SHARE SKIP LOCKED', kinds: ['select'], does: [['select', 'lock']], expect: { ro: 'deny' } },
  { class: 'kinds', sql: 'TRUNCATE t', kinds: ['truncate'], relations: [['t']], expect: { rw: 'deny', all: 'allow', all_but_ddl: 'deny' } },
  { class: 'kinds', sql: 'DROP TABLE secret.keys', kinds: ['ddl'], relations: [['secret.keys']], expect: { rw: 'deny', all: 'allow' } },
  { class: 'kinds', sql: 'ALTER TABLE t ADD COLUMN c int', kinds: ['ddl'], relations: [['t']], expect: { rw: 'deny', all: 'allow', all_but_ddl: 'deny' } },
  { class: 'kinds', sql: 'CREATE INDEX ON t (b)', kinds: ['ddl'], expect: { rw: 'deny', all: 'allow' } },
  { class: 'kinds', sql: 'CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$', kinds: ['ddl'], expect: { rw: 'deny', all_but_ddl: 'deny', all: 'allow' } },
  { class: 'kinds', sql: 'CREATE ROLE pa_corpus_never LOGIN', kinds: ['ddl'], expect: { all_but_ddl: 'deny', rw: 'deny' }, pg: { skip: 'roles are cluster-wide' } },
  { class: 'kinds', sql: 'GRANT SELECT ON accounts TO PUBLIC', kinds: ['grant'], relations: [['accounts']], expect: { rw: 'deny', all: 'allow' } },
  { class: 'kinds', sql: 'REVOKE ALL ON t FROM PUBLIC', kinds: ['grant'], expect: { rw: 'deny' } },
  { class: 'kinds', sql: 'GRANT SELECT ON ALL TABLES IN SCHEMA secret TO PUBLIC', kinds: ['grant'], expect: { rw: 'deny', all: 'allow' } },
  { class: 'kinds', sql: 'LOCK TABLE t IN ACCESS EXCLUSIVE MODE', kinds: ['lock'], relations: [['t']], expect: { session: 'allow', rw: 'allow', ro: 'deny' } },
  { class: 'kinds', sql: 'LISTEN chan', kinds: ['listen'], expect: { session: 'allow', ro: 'deny' } },
  { class: 'kinds', sql: "NOTIFY chan, 'payload'", kinds: ['notify'], expect: { session: 'allow', ro: 'deny' } },
  { class: 'kinds', sql: 'UNLISTEN *', kinds: ['unlisten'], expect: { session: 'allow' } },
  { class: 'kinds', sql: 'DISCARD ALL', kinds: ['discard'], expect: { session: 'allow', ro: 'deny' }, pg: 'no-tx' },
  { class: 'kinds', sql: 'DISCARD TEMP', kinds: ['discard'], expect: { session: 'allow' } },
  { class: 'kinds', sql: 'DECLARE c1 CURSOR FOR SELECT * FROM accounts; FETCH 1 FROM c1; CLOSE c1', kinds: ['cursor', 'cursor', 'cursor'], does: [['select', 'cursor'], ['cursor'], ['cursor']], expect: { session: 'allow', ro: 'deny' } },
  { class: 'kinds', sql: 'DECLARE c2 CURSOR FOR SELECT * FROM secret.keys', kinds: ['cursor'], expect: { session: 'deny' } },
  { class: 'kinds', sql: 'VACUUM t', kinds: ['vacuum'], relations: [['t']], expect: { session: 'allow', all: 'allow', ro: 'deny' }, pg: 'no-tx' },
  { class: 'kinds', sql: 'VACUUM (ANALYZE) secret.keys', kinds: ['vacuum'], expect: { session: 'deny' }, pg: 'no-tx' },
  { class: 'kinds', sql: 'ANALYZE t', kinds: ['analyze'], expect: { session: 'allow', ro: 'deny' } },
  { class: 'kinds', sql: 'REINDEX TABLE t', kinds: ['vacuum'], expect: { session: 'allow' } },
  { class: 'kinds', sql: 'CHECKPOINT', kinds: ['utility'], expect: { all: 'allow', session: 'deny' }, pg: 'no-tx' },
  { class: 'kinds', sql: "LOAD 'auto_explain'", kinds: ['utility'], expect: { all: 'deny' }, reason: 'LOAD', pg: { skip: 'loads a shared library' } },
  { class: 'kinds', sql: 'CREATE DATABASE pa_corpus_never', kinds: ['ddl'], expect: { all_but_ddl: 'deny', all: 'allow' }, pg: { skip: 'CREATE DATABASE cannot run in a transaction' } },
  { class: 'kinds', sql: 'COMMENT ON TABLE t IS $$x$$', kinds: ['ddl'], expect: { rw: 'deny' } },

  // ── Fingerprints ─────────────────────────────────────────────────────────
  { class: 'fingerprint', sql: 'SELECT name FROM accounts WHERE id = 1', kinds: ['select'], expect: { fp: 'allow' } },
  { class: 'fingerprint', sql: 'select name from accounts where id=42', kinds: ['select'], expect: { fp: 'allow' } },
  { class: 'fingerprint', sql: '/* app */ SELECT name FROM accounts WHERE id = 7', kinds: ['select'], expect: { fp: 'allow' } },
  { class: 'fingerprint', sql: 'UPDATE accounts SET balance = balance + 100 WHERE id = 2', kinds: ['update'], expect: { fp: 'allow', ro: 'deny' } },
  { class: 'fingerprint', sql: 'SELECT name FROM accounts WHERE id = 1 OR 1 = 1', kinds: ['select'], expect: { fp: 'deny' } },
  { class: 'fingerprint', sql: 'SELECT name, email FROM accounts WHERE id = 1', kinds: ['select'], expect: { fp: 'deny' } },
  { class: 'fingerprint', sql: 'SELECT name FROM accounts WHERE id = 1; SELECT name FROM accounts WHERE id = 2', kinds: ['select', 'select'], expect: { fp: 'allow' } },

  // ── Go-style patterns (always with the tree checks) ──────────────────────
  { class: 'pattern', sql: 'select id from accounts', kinds: ['select'], expect: { pattern: 'allow' } },
  { class: 'pattern', sql: '/* note */ SELECT   id\n FROM accounts', kinds: ['select'], expect: { pattern: 'allow' } },
  { class: 'pattern', sql: 'SELECT * FROM orders', kinds: ['select'], expect: { pattern: 'deny' } },
  { class: 'pattern', sql: 'SELECT * FROM accounts WHERE pg_sleep(0) IS NULL', kinds: ['select'], expect: { pattern: 'deny' }, reason: 'denied by default' },
  { class: 'pattern', sql: 'SELECT * FROM accounts; SELECT * FROM accounts', kinds: ['select', 'select'], expect: { pattern: 'allow' } },
  { class: 'pattern', sql: 'SELECT * FROM accounts a, LATERAL (WITH d AS (SELECT 1) SELECT * FROM d) x', kinds: ['select'], expect: { pattern: 'allow' } },
  { class: 'pattern', sql: "SELECT 'drop table x'", kinds: ['select'], expect: { all_but_ddl: 'deny', all: 'allow' }, reason: 'no-drop-text' },
  { class: 'pattern', sql: 'DROP   TABLE t', kinds: ['ddl'], expect: { all_but_ddl: 'deny' } },

  // ── Parse errors are denials ─────────────────────────────────────────────
  { class: 'parse-error', sql: 'SELEC 1', expect: { ro: 'deny', all: 'deny' }, reason: 'parse error', pg: SYNTAX },
  { class: 'parse-error', sql: 'SELECT 1; SELEC 2', expect: { ro: 'deny', all: 'deny' }, reason: 'parse error', pg: SYNTAX },
  { class: 'parse-error', sql: "SELECT 'unterminated", expect: { all: 'deny' }, pg: SYNTAX },
  { class: 'parse-error', sql: 'SELECT $$unterminated', expect: { all: 'deny' }, pg: SYNTAX },
  { class: 'parse-error', sql: 'SELECT 1 /* unterminated', expect: { all: 'deny' }, pg: SYNTAX },
  { class: 'parse-error', sql: 'DROP TABLE', expect: { all: 'deny' }, pg: SYNTAX },
  { class: 'parse-error', sql: 'SELECT * FROM accounts WHERE', expect: { ro: 'deny' }, pg: SYNTAX },
  { class: 'parse-error', sql: 'SELECT 1\u0000; DROP TABLE t', expect: { all: 'deny' }, reason: 'NUL', pg: { skip: 'the wire protocol cannot carry NUL in a query' } },
];
