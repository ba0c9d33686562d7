import { createHash } from 'node:crypto';
import { Client } from 'pg';
import { AppError, type Logger } from '@pa/kit';
import { MIGRATIONS, type Migration } from './migrations';

/** Advisory lock key that serialises migrators across control-plane replicas. */
const MIGRATION_LOCK = 7_220_431_001;

const checksum = (m: Migration): string => createHash('sha256').update(m.sql).digest('hex');

/** A fingerprint of the whole migration set (test templates are keyed by it). */
export const migrationsFingerprint = (): string =>
  MIGRATIONS.map((m) => `${m.version}:${checksum(m)}`).join(',');

export interface MigrationResult {
  readonly applied: number[];
  readonly current: number;
}

/**
 * Applies pending migrations to the database at `url` in one transaction under
 * an advisory lock. Running it again is a no-op. A migration whose text changed
 * after it was applied stops with CONFIG_INVALID.
 */
export const migrate = async (url: string, logger?: Logger): Promise<MigrationResult> => {
  const client = new Client({ connectionString: url, application_name: 'pa-migrate' });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: number; checksum: string }>('SELECT version, checksum FROM schema_migrations');
    const done = new Map(rows.map((r) => [r.version, r.checksum]));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      const sum = checksum(m);
      const prior = done.get(m.version);
      if (prior !== undefined) {
        if (prior !== sum) {
          throw new AppError('CONFIG_INVALID', { message: `Migration ${m.version} (${m.name}) changed after it was applied.` });
        }
        continue;
      }
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, sum]);
      applied.push(m.version);
      logger?.info('Migration applied.', { version: m.version, migration: m.name });
    }
    await client.query('COMMIT');
    return { applied, current: MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0 };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
};

/** Whether every known migration has been applied (for /readyz). */
export const isSchemaCurrent = async (query: (sql: string) => Promise<{ rows: Array<{ max: number | null }> }>): Promise<boolean> => {
  try {
    const { rows } = await query('SELECT max(version) AS max FROM schema_migrations');
    return (rows[0]?.max ?? 0) >= (MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0);
  } catch {
    return false;
  }
};
