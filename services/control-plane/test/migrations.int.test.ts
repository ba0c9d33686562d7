import { Client } from 'pg';
import { AppError } from '@pa/kit';
import { createTestDatabase, type TestDatabase } from '@pa/testing';
import { isSchemaCurrent, migrate } from '../src/db/migrate';
import { MIGRATIONS } from '../src/db/migrations';
import { controlPlaneTemplate } from './harness';

const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/** Runs `fn` with a client on `url`, closing it afterwards. */
const withClient = async <T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> => {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
};

/** The SQLSTATE `promise` rejects with. */
const sqlState = async (promise: Promise<unknown>): Promise<string | undefined> => {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

describe('migrations', () => {
  const databases: TestDatabase[] = [];
  const fresh = async (template?: string): Promise<TestDatabase> => {
    const db = await createTestDatabase(template);
    databases.push(db);
    return db;
  };
  afterAll(async () => {
    for (const db of databases) await db.drop();
  });

  it('applies every migration to an empty database, then a second run is a no-op', async () => {
    const db = await fresh();
    const first = await migrate(db.url);
    expect(first).toEqual({ applied: MIGRATIONS.map((m) => m.version), current: latest });
    const second = await migrate(db.url);
    expect(second).toEqual({ applied: [], current: latest });
    const rows = await withClient(db.url, async (c) => (await c.query<{ version: number; name: string; checksum: string }>('SELECT version, name, checksum FROM schema_migrations ORDER BY version')).rows);
    expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.checksum))).toBe(true);
    expect(await withClient(db.url, (c) => isSchemaCurrent((sql) => c.query(sql)))).toBe(true);
  });

  it('serialises concurrent migrators: each migration is applied exactly once', async () => {
    const db = await fresh();
    const results = await Promise.all([migrate(db.url), migrate(db.url), migrate(db.url)]);
    expect(results.flatMap((r) => r.applied).sort()).toEqual(MIGRATIONS.map((m) => m.version));
  });

  it('finds the template database already migrated', async () => {
    const db = await fresh(await controlPlaneTemplate());
    expect(await migrate(db.url)).toEqual({ applied: [], current: latest });
  });

  it('refuses to start when an applied migration changed (checksum mismatch), changing nothing', async () => {
    const db = await fresh(await controlPlaneTemplate());
    await withClient(db.url, (c) => c.query("UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 1"));
    const err = await migrate(db.url).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('CONFIG_INVALID');
    expect((err as AppError).message).toContain('Migration 1');
    const { rows } = await withClient(db.url, (c) => c.query<{ checksum: string }>('SELECT checksum FROM schema_migrations WHERE version = 1'));
    expect(rows[0]?.checksum).toBe('0'.repeat(64));
  });

  it('reports an unmigrated database as not current', async () => {
    const db = await fresh();
    expect(await withClient(db.url, (c) => isSchemaCurrent((sql) => c.query(sql)))).toBe(false);
  });

  describe('audit_events is append-only at the database', () => {
    let url: string;
    beforeAll(async () => {
      url = (await fresh(await controlPlaneTemplate())).url;
      await withClient(url, (c) =>
        c.query(`INSERT INTO audit_events (id, time, action, outcome, details) VALUES ('evt_1', now(), 'test.event', 'success', '{"n":1}')`),
      );
    });

    it.each([
      ['UPDATE', `UPDATE audit_events SET outcome = 'failure' WHERE id = 'evt_1'`],
      ['UPDATE of details', `UPDATE audit_events SET details = '{}'`],
      ['DELETE', `DELETE FROM audit_events WHERE id = 'evt_1'`],
      ['DELETE all', 'DELETE FROM audit_events'],
      ['TRUNCATE', 'TRUNCATE audit_events'],
    ])('rejects %s with SQLSTATE 42501', async (_what, sql) => {
      expect(await withClient(url, (c) => sqlState(c.query(sql)))).toBe('42501');
      const { rows } = await withClient(url, (c) => c.query<{ outcome: string; details: unknown }>(`SELECT outcome, details FROM audit_events WHERE id = 'evt_1'`));
      expect(rows).toEqual([{ outcome: 'success', details: { n: 1 } }]);
    });

    it('still accepts inserts', async () => {
      await withClient(url, (c) => c.query(`INSERT INTO audit_events (id, time, action, outcome) VALUES ('evt_2', now(), 'test.event', 'success')`));
      const { rows } = await withClient(url, (c) => c.query<{ n: string }>('SELECT count(*) AS n FROM audit_events'));
      expect(Number(rows[0]?.n)).toBe(2);
    });
  });
});
