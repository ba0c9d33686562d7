import type { SessionFixtureOptions } from '../../../src/testing/session-fixture';

type Policies = SessionFixtureOptions['policies'];

const TABLES = ['public.*', 'accounts', 't', 'audit_log', 'big'];

/**
 * An application's policy: DML and COPY on the public tables, transactions,
 * prepared statements, a few session commands; DDL and the secret tables (`keys` in any schema: without a pinned search_path a schema-wide deny such as `secret.*` would also hit every unqualified name)
 * denied (deny wins).
 */
export const APP_POLICY: Policies = [
  {
    name: 'app',
    rules: [
      { id: 'dml', name: 'Read and write the app tables', effect: 'allow', type: 'sql', kinds: ['select', 'insert', 'update', 'delete', 'lock'], relations: TABLES },
      { id: 'tx', effect: 'allow', type: 'sql', kinds: ['transaction'] },
      { id: 'copy', effect: 'allow', type: 'sql', kinds: ['copy_to', 'copy_from'], relations: TABLES },
      { id: 'prepared', effect: 'allow', type: 'sql', kinds: ['prepare', 'execute', 'deallocate', 'select', 'insert'], relations: TABLES },
      { id: 'session', effect: 'allow', type: 'sql', kinds: ['listen', 'notify', 'unlisten', 'discard'] },
      { id: 'settings', effect: 'allow', type: 'sql', kinds: ['set', 'reset', 'show'], settings: ['application_name', 'statement_timeout', 'timezone', 'client_encoding'] },
      { id: 'sleep', effect: 'allow', type: 'sql', kinds: ['select'], functions: ['pg_sleep', '*'] },
      { id: 'no-ddl', name: 'No schema changes', effect: 'deny', type: 'sql', kinds: ['ddl', 'truncate', 'grant'] },
      { id: 'no-secrets', name: 'No secrets', effect: 'deny', type: 'sql', relations: ['keys', 'passwords'] },
    ],
  },
];

/** Everything the engine allows with an `all` rule, minus DDL (for pgbench and throughput). */
export const ALL_BUT_DDL_POLICY: Policies = [
  {
    name: 'all-but-ddl',
    rules: [
      { id: 'everything', effect: 'allow', type: 'all' },
      { id: 'no-ddl', effect: 'deny', type: 'sql', kinds: ['ddl', 'truncate'] },
    ],
  },
];
