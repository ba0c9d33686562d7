import type { Rule } from '../schema';

/**
 * Policies the corpus cases are judged under. Each becomes one stored policy
 * for a PostgreSQL (or HTTP) connection and is compiled with the engine's own
 * compiler. `fingerprintsOf` lists example queries whose fingerprints the
 * rule at that index allows (computed when the fixture is built).
 */
export interface CorpusPolicy {
  readonly protocol: 'postgres' | 'http';
  /** The backend's pinned search_path, if the connection declares one. */
  readonly searchPath?: readonly string[];
  readonly rules: readonly Rule[];
  readonly fingerprintsOf?: Readonly<Record<number, readonly string[]>>;
}

export const CORPUS_POLICIES = {
  /** Read-only analyst: SELECT on public, transactions; secrets denied. search_path pinned to public. */
  ro: {
    protocol: 'postgres',
    searchPath: ['public'],
    rules: [
      { id: 'read', effect: 'allow', type: 'sql', kinds: ['select'], relations: ['public.*'] },
      { id: 'tx', effect: 'allow', type: 'sql', kinds: ['transaction'] },
      { id: 'no-secrets', effect: 'deny', type: 'sql', relations: ['secret.*', '*.passwords'] },
    ],
  },
  /** Like ro, but the connection declares no search_path: unqualified names match only schema-less patterns. */
  ro_strict: {
    protocol: 'postgres',
    rules: [{ id: 'read', effect: 'allow', type: 'sql', kinds: ['select'], relations: ['public.*'] }],
  },
  /** Application read/write on public, a few settings, COPY TO of accounts; DDL and secrets denied. */
  rw: {
    protocol: 'postgres',
    searchPath: ['public'],
    rules: [
      { id: 'dml', effect: 'allow', type: 'sql', kinds: ['select', 'insert', 'update', 'delete', 'lock'], relations: ['public.*'] },
      { id: 'tx', effect: 'allow', type: 'sql', kinds: ['transaction'] },
      { id: 'settings', effect: 'allow', type: 'sql', kinds: ['set', 'reset', 'show'], settings: ['application_name', 'statement_timeout', 'timezone'] },
      { id: 'export', effect: 'allow', type: 'sql', kinds: ['copy_to'], relations: ['public.accounts'] },
      { id: 'no-ddl', name: 'No schema changes', effect: 'deny', type: 'sql', kinds: ['ddl', 'truncate', 'grant'] },
      { id: 'no-secrets', effect: 'deny', type: 'sql', relations: ['secret.*'] },
    ],
  },
  /** Everything the engine allows with an `all` rule (not DO, FunctionCall or default-denied functions). */
  all: {
    protocol: 'postgres',
    rules: [{ id: 'everything', effect: 'allow', type: 'all' }],
  },
  /** Allow all, deny DDL and a Go-style text pattern. */
  all_but_ddl: {
    protocol: 'postgres',
    rules: [
      { id: 'everything', effect: 'allow', type: 'all' },
      { id: 'no-ddl', effect: 'deny', type: 'sql', kinds: ['ddl', 'truncate'] },
      { id: 'no-drop-text', effect: 'deny', type: 'sql', pattern: '(?i)\\bdrop\\s+table\\b' },
    ],
  },
  /** DO blocks, named explicitly. */
  do: {
    protocol: 'postgres',
    rules: [{ id: 'do', effect: 'allow', type: 'sql', kinds: ['do'] }],
  },
  /** SELECT on public with any function, pg_sleep named explicitly. */
  sleep: {
    protocol: 'postgres',
    searchPath: ['public'],
    rules: [{ id: 'read-sleep', effect: 'allow', type: 'sql', kinds: ['select'], relations: ['public.*'], functions: ['*', 'pg_sleep'] }],
  },
  /** SELECT on public with a short list of functions. */
  fnlist: {
    protocol: 'postgres',
    searchPath: ['public'],
    rules: [{ id: 'read-fns', effect: 'allow', type: 'sql', kinds: ['select'], relations: ['public.*'], functions: ['lower', 'upper', 'count', 'now', 'public.f'] }],
  },
  /** Exact queries by fingerprint only (any constants). */
  fp: {
    protocol: 'postgres',
    rules: [{ id: 'known-query', effect: 'allow', type: 'sql', fingerprints: ['0000000000000000'] }],
    fingerprintsOf: { 0: ['SELECT name FROM accounts WHERE id = 1', 'UPDATE accounts SET balance = balance + 1 WHERE id = 1'] },
  },
  /** A whitelist regex as in the original port-authorizing, combined with the tree checks. */
  pattern: {
    protocol: 'postgres',
    rules: [{ id: 'go-whitelist', effect: 'allow', type: 'sql', kinds: ['select'], relations: ['*'], pattern: '(?i)^select .* from accounts' }],
  },
  /** EXPLAIN and SELECT on public. */
  explain: {
    protocol: 'postgres',
    searchPath: ['public'],
    rules: [{ id: 'explain', effect: 'allow', type: 'sql', kinds: ['explain', 'select'], relations: ['public.*'] }],
  },
  /** SQL-level prepared statements of SELECTs on public. */
  prep: {
    protocol: 'postgres',
    searchPath: ['public'],
    rules: [{ id: 'prepared', effect: 'allow', type: 'sql', kinds: ['prepare', 'execute', 'deallocate', 'select'], relations: ['public.*'] }],
  },
  /** COPY of accounts both ways. */
  copy: {
    protocol: 'postgres',
    searchPath: ['public'],
    rules: [{ id: 'copy', effect: 'allow', type: 'sql', kinds: ['copy_to', 'copy_from'], relations: ['public.accounts'] }],
  },
  /** Settings: any SET/RESET/SHOW; set_config of app.* named explicitly. Unpinned search_path. */
  setter: {
    protocol: 'postgres',
    rules: [
      { id: 'settings', effect: 'allow', type: 'sql', kinds: ['set', 'reset', 'show'], settings: ['*'] },
      { id: 'set-config', effect: 'allow', type: 'sql', kinds: ['select', 'set', 'show'], functions: ['set_config', 'current_setting'], settings: ['app.*', 'application_name'] },
      { id: 'no-role', effect: 'deny', type: 'sql', kinds: ['set', 'reset'], settings: ['role', 'session_authorization'] },
    ],
  },
  /** Session-level commands: LISTEN/NOTIFY, cursors, locks, maintenance. */
  session: {
    protocol: 'postgres',
    searchPath: ['public'],
    rules: [
      { id: 'session', effect: 'allow', type: 'sql', kinds: ['listen', 'notify', 'unlisten', 'discard', 'deallocate'] },
      { id: 'cursors', effect: 'allow', type: 'sql', kinds: ['cursor', 'select'], relations: ['public.*'] },
      { id: 'maint', effect: 'allow', type: 'sql', kinds: ['vacuum', 'analyze', 'lock'], relations: ['public.*'] },
    ],
  },
  /** HTTP API policy. */
  api: {
    protocol: 'http',
    rules: [
      { id: 'read-api', effect: 'allow', type: 'http', methods: ['GET', 'HEAD'], paths: ['/api/**'] },
      { id: 'create-item', effect: 'allow', type: 'http', methods: ['POST'], paths: ['/api/items'], headers: { 'Content-Type': '^application/json(;|$)' } },
      { id: 'txt-files', effect: 'allow', type: 'http', methods: ['GET'], paths: ['/files/*.txt'] },
      { id: 'search', effect: 'allow', type: 'http', methods: ['GET'], paths: ['/search'], query: { q: '^[a-z]+$' } },
      { id: 'status', effect: 'allow', type: 'http', methods: ['GET'], pathRegex: '^/v[0-9]+/status$' },
      { id: 'no-admin', name: 'No admin API', effect: 'deny', type: 'http', paths: ['/api/admin/**'] },
      { id: 'no-debug', effect: 'deny', type: 'http', headers: { 'X-Debug': '.*' } },
      { id: 'no-export', effect: 'deny', type: 'http', paths: ['/api/**'], query: { format: '^csv$' } },
    ],
  },
  /** HTTP: everything except DELETE. */
  api_all: {
    protocol: 'http',
    rules: [
      { id: 'all', effect: 'allow', type: 'all' },
      { id: 'no-delete', effect: 'deny', type: 'http', methods: ['DELETE'] },
    ],
  },
} as const satisfies Record<string, CorpusPolicy>;

/** A corpus policy's name. */
export type CorpusPolicyName = keyof typeof CORPUS_POLICIES;
