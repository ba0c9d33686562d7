import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';

/**
 * node-postgres for the handler's integration tests.
 *
 * TEMPORARY SHIM (see the handler's README, "Tests"): `pg` is not a
 * dependency of @pa/data-plane, and the data plane's ESLint rule forbids
 * importing it. Until the lead adds `pg` (+ `@types/pg`) as a devDependency
 * and allows it under `services/data-plane/test/**`, this loads the copy that
 * @pa/testing depends on, and types the little the tests use.
 */
export interface PgQueryResult<T = Record<string, unknown>> {
  rows: T[];
  rowCount: number | null;
  command: string;
}

export interface PgQueryConfig {
  text: string;
  values?: unknown[];
  name?: string;
  binary?: boolean;
  rowMode?: 'array';
  types?: { getTypeParser: (oid: number, format?: string) => (value: unknown) => unknown };
}

export interface PgError extends Error {
  code?: string;
  severity?: string;
}

export interface PgClient {
  connect(): Promise<void>;
  query<T = Record<string, unknown>>(text: string | PgQueryConfig, values?: unknown[]): Promise<PgQueryResult<T>>;
  end(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'notification', listener: (n: { channel: string; payload?: string }) => void): this;
  on(event: 'notice', listener: (n: PgError) => void): this;
  readonly processID: number | null;
  /** The secret of the BackendKeyData the server sent (a signed 32-bit integer). */
  readonly secretKey: number | null;
}

export interface PgClientConfig {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  connectionString?: string;
  ssl?: boolean | { ca?: string; rejectUnauthorized?: boolean; servername?: string };
  application_name?: string;
  options?: string;
  statement_timeout?: number;
  /** An already connected stream to speak the protocol over (e.g. a tunnel socket) instead of dialing host:port. */
  stream?: Duplex;
}

interface PgModule {
  Client: new (config: PgClientConfig | string) => PgClient;
}

const load = (): PgModule => {
  const fromTesting = createRequire(require.resolve('@pa/testing/package.json'));
  return fromTesting('pg') as PgModule;
};

let pg: PgModule | null = null;

/** A new (unconnected) node-postgres client. */
export const pgClient = (config: PgClientConfig | string): PgClient => {
  pg ??= load();
  return new pg.Client(config);
};

/** Connects a client and closes it after `fn`. */
export const withPg = async <T>(config: PgClientConfig | string, fn: (c: PgClient) => Promise<T>): Promise<T> => {
  const c = pgClient(config);
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
};
