import { AppError } from '@pa/kit';
import { connectBackend, type AcceptedStartup, type BackendConnection, type BackendTlsOptions } from '@pa/pgwire';
import type { SessionContext } from '../handler';

/** Node-wide TLS settings for backend connections (the grant carries only the mode). */
export interface BackendTlsSettings {
  /** Trusted CA certificates (PEM) for `verify-ca` / `verify-full`; Node's bundled roots when absent. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
}

/**
 * The database a session reaches. The grant's database is authoritative: a
 * client naming another one is refused (a script meant for staging must not
 * run on the database of this grant), except when it names its own user name,
 * which is what libpq, node-postgres and JDBC send when no database was given.
 * Without a database in the grant, the client's choice is used.
 */
export const chooseDatabase = (grantDatabase: string | null, startup: AcceptedStartup): string => {
  if (grantDatabase === null) return startup.database;
  if (startup.database === grantDatabase || startup.database === startup.user) return grantDatabase;
  throw new AppError('PG_STARTUP_REFUSED', {
    message: `database "${startup.database.slice(0, 63)}" is not reachable through this grant; it serves database "${grantDatabase}".`,
  });
};

/** Settings from the client's startup passed on to the backend (client_encoding is always UTF8). */
const forwardedSettings = (startup: AcceptedStartup): Map<string, string> => {
  const out = new Map<string, string>();
  for (const [name, value] of startup.settings) {
    if (name.toLowerCase() !== 'client_encoding') out.set(name, value);
  }
  return out;
};

/**
 * Logs the proxy in to the backend with the connection's credentials (the
 * user never sees them), TLS per the grant's mode. Fails with the pgwire
 * AppErrors (PG_BACKEND_UNAVAILABLE / TIMEOUT / TLS_FAILED / AUTH_FAILED /
 * REJECTED → SQLSTATE 08001, CONNECTION_LOST → 08006), which the handler
 * reports to the client as FATAL before it ever says AuthenticationOk.
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
export const loginToBackend = async (ctx: SessionContext, startup: AcceptedStartup, tls: BackendTlsSettings): Promise<BackendConnection> => {
  const database = chooseDatabase(ctx.grant.connection.database, startup);
  const credentials = await ctx.credentials();
  if (!credentials || credentials.kind !== 'password') {
    throw new AppError('PG_BACKEND_AUTH_FAILED', { message: 'No database credentials are configured for this connection.' });
  }
  const { host, port, tlsMode } = ctx.grant.connection;
  const tlsOptions: BackendTlsOptions = { mode: tlsMode, ...(tls.ca !== undefined ? { ca: tls.ca } : {}) };
  return connectBackend({
    host,
    port,
    user: credentials.username,
    password: credentials.password,
    database,
    params: forwardedSettings(startup),
    tls: tlsOptions,
    connectTimeoutMs: ctx.settings.connectTimeoutMs,
  });
};
