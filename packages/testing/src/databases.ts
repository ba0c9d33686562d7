import { createHash, randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** Admin URL of the test PostgreSQL server (set by scripts/test.mjs). */
export const testDatabaseUrl = (): string =>
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Returns `url` with its database name replaced. */
export const withDatabase = (url: string, database: string): string => {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
};

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

const withAdmin = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
  const client = new Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
};

export interface TemplateSpec {
  /** Short name of what the template holds, e.g. `cp` for the control plane schema. */
  readonly name: string;
  /** Anything that changes when the schema changes (e.g. the migration sources). */
  readonly fingerprint: string;
  /** Builds the schema into an empty database at `url`. */
  readonly build: (url: string) => Promise<void>;
}

/**
 * Ensures a template database for `spec` exists (built once per fingerprint,
 * safe under parallel jest workers through an advisory lock) and returns its name.
 */
export const ensureTemplate = async (spec: TemplateSpec): Promise<string> => {
  const hash = createHash('sha256').update(spec.fingerprint).digest('hex').slice(0, 12);
  const template = `pa_tpl_${spec.name}_${hash}`;
  await withAdmin(async (admin) => {
    await admin.query('SELECT pg_advisory_lock(hashtext($1))', [template]);
    try {
      const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
      if (found.rowCount) return;
      const building = `${template}_building`;
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(building)}`);
      await admin.query(`CREATE DATABASE ${quoteIdent(building)}`);
      await spec.build(withDatabase(testDatabaseUrl(), building));
      await admin.query(`ALTER DATABASE ${quoteIdent(building)} RENAME TO ${quoteIdent(template)}`);
    } finally {
      await admin.query('SELECT pg_advisory_unlock(hashtext($1))', [template]);
    }
  });
  return template;
};

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** Drops the database (terminating its remaining sessions). */
  drop(): Promise<void>;
}

/** Creates a fresh database for one test file, cloned from `template` when given. */
export const createTestDatabase = async (template?: string): Promise<TestDatabase> => {
  const name = `pa_test_${randomBytes(6).toString('hex')}`;
  await withAdmin(async (admin) => {
    await admin.query(
      `CREATE DATABASE ${quoteIdent(name)}${template ? ` TEMPLATE ${quoteIdent(template)}` : ''}`,
    );
  });
  return {
    name,
    url: withDatabase(testDatabaseUrl(), name),
    drop: () =>
      withAdmin(async (admin) => {
        await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      }),
  };
};
