import { Pool, type PoolClient, type QueryResultRow } from 'pg';
import { AppError, type Logger } from '@pa/kit';

/** Anything that can run a query: the pool or a client inside a transaction. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
}

export interface Database extends Queryable {
  /** Runs `fn` in a transaction (BEGIN … COMMIT, ROLLBACK on error). */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Whether the database answers a trivial query. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
  readonly pool: Pool;
}

/** PostgreSQL error codes we translate where they occur. */
const UNIQUE_VIOLATION = '23505';
const CONNECTION_CLASS = '08';

const pgCode = (err: unknown): string | undefined =>
  typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'string'
    ? (err as { code: string }).code
    : undefined;

/**
 * Translates driver errors into AppErrors at the repository edge: unique
 * violations become CONFLICT, connection failures DATABASE_UNAVAILABLE.
 */
export const translateDbError = (err: unknown): unknown => {
  const code = pgCode(err);
  if (code === UNIQUE_VIOLATION) return new AppError('CONFLICT', { cause: err });
  if (code?.startsWith(CONNECTION_CLASS) || code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === '57P01') {
    return new AppError('DATABASE_UNAVAILABLE', { cause: err });
  }
  return err;
};

const wrap = async <T>(fn: () => Promise<T>): Promise<T> => {
  try {
    return await fn();
  } catch (err) {
    throw translateDbError(err);
  }
};

const clientQueryable = (client: PoolClient): Queryable => ({
  query: (text, values) => wrap(() => client.query(text, values)),
});

/** Creates the control plane's connection pool. */
export const createDatabase = (url: string, options: { poolSize?: number; logger?: Logger } = {}): Database => {
  const pool = new Pool({ connectionString: url, max: options.poolSize ?? 10, application_name: 'pa-control-plane' });
  pool.on('error', (err) => options.logger?.warn('Idle database client failed.', { err: err.message }));
  return {
    pool,
    query: (text, values) => wrap(() => pool.query(text, values)),
    transaction: async (fn) => {
      const client = await wrap(() => pool.connect());
      try {
        await client.query('BEGIN');
        const result = await fn(clientQueryable(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw translateDbError(err);
      } finally {
        client.release();
      }
    },
    ping: async () => {
      try {
        await pool.query('SELECT 1');
        return true;
      } catch {
        return false;
      }
    },
    close: () => pool.end(),
  };
};
