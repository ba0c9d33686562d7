import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AppError, isAppError } from '@pa/kit';
import {
  backend,
  InMemoryCancelKeyStore,
  protocolNegotiation,
  type BackendConnection,
  type BackendKey,
  type CancelKeyStore,
  type CancelRequest,
  type FrontendDecoderLimits,
  type StartupPolicyOptions,
} from '@pa/pgwire';
import type { ProtocolHandler, Session, SessionContext } from '../handler';
import { loginToBackend, type BackendTlsSettings } from './backend-login';
import { cancelDirect, cancelKeyContext, CancelSession, type ClientPath, type DirectCancelDeps, type DirectCancelOutcome } from './cancel-session';
import { readClientStartup, type ClientStartup } from './client-startup';
import { DEFAULT_SESSION_TUNING, PostgresSession, type SessionTuning } from './postgres-session';
import { errorFrame } from './wire';

/**
 * The PostgreSQL protocol handler (STYLE.md §2). See README.md for the
 * contract and the message flow.
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html
 */

/** Options of {@link createPostgresHandler}. */
export interface PostgresHandlerOptions {
  /**
   * Where proxy-issued cancel keys are mapped to backend keys. A node shares
   * one store across its tunnels (and, with a Redis store, across nodes, since
   * a cancel may arrive on another node). Default: a new in-memory store.
   */
  readonly cancelKeys?: CancelKeyStore;
  /** Trust roots for backend TLS (`verify-ca`, `verify-full`). */
  readonly backendTls?: BackendTlsSettings;
  /** Extra startup settings to accept from clients (e.g. `search_path`). */
  readonly startupPolicy?: StartupPolicyOptions;
  /** Caps on frontend messages (defaults: pgwire's, 1 MiB for SQL texts, Bind and CopyData). */
  readonly limits?: Partial<FrontendDecoderLimits>;
  /** Per-session tunables. */
  readonly tuning?: Partial<SessionTuning>;
}

/** A client whose StartupMessage was read (and passed the allowlist). */
export type AcceptedClientStartup = Extract<ClientStartup, { kind: 'startup' }>;

/** The postgres handler, which can also take over a client whose startup another listener read. */
export interface PostgresProtocolHandler extends ProtocolHandler {
  /**
   * Sets a session up for a client whose startup was already read and whose
   * authentication is under way (the direct listener: TLS, then the grant as
   * the password). `negotiated`: the NegotiateProtocolVersion, if any, was
   * already sent (it must precede the authentication request).
   */
  setupAfterStartup(client: Duplex, ctx: SessionContext, startup: AcceptedClientStartup, negotiated: boolean): Promise<Session>;
  /** A CancelRequest the direct listener read (see {@link cancelDirect}): honoured for keys issued to direct sessions. */
  cancelDirect(request: CancelRequest, deps: Omit<DirectCancelDeps, 'keys' | 'tls'>): Promise<DirectCancelOutcome>;
}

/** Whether `h` is the postgres handler (it can take over a startup read elsewhere). */
export const isPostgresHandler = (h: ProtocolHandler): h is PostgresProtocolHandler =>
  typeof (h as Partial<PostgresProtocolHandler>).setupAfterStartup === 'function';

/** Sockets whose startup was a CancelRequest: PostgreSQL never answers those, not even with an error. */
const cancelSockets = new WeakSet<Duplex>();

/** The bytes that complete the client's startup: it is logged in, and the backend's session is ready. */
const welcome = (conn: BackendConnection, key: BackendKey | null, negotiation: ReturnType<typeof protocolNegotiation>): Buffer => {
  const parts: Buffer[] = [];
  if (negotiation.needed) parts.push(backend.negotiateProtocolVersion(negotiation.newestMinor, negotiation.unrecognizedOptions));
  parts.push(backend.authenticationOk());
  for (const [name, value] of conn.parameters) parts.push(backend.parameterStatus(name, value));
  if (key) parts.push(backend.backendKeyData(key.processId, key.secretKey));
  parts.push(backend.readyForQuery(conn.transactionStatus));
  return Buffer.concat(parts);
};

/** Builds a postgres handler; {@link postgresHandler} is one with the defaults. */
export const createPostgresHandler = (options: PostgresHandlerOptions = {}): PostgresProtocolHandler => {
  const cancelKeys = options.cancelKeys ?? new InMemoryCancelKeyStore();
  const tls = options.backendTls ?? {};
  const tuning: SessionTuning = { ...DEFAULT_SESSION_TUNING, ...options.tuning };

  const setup = async (client: Duplex, ctx: SessionContext): Promise<Session> => {
    const startup = await readClientStartup(client, {
      timeoutMs: ctx.settings.connectTimeoutMs,
      signal: ctx.signal,
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.startupPolicy ? { startupPolicy: options.startupPolicy } : {}),
    });
    if (startup.kind === 'cancel') {
      cancelSockets.add(client);
      return new CancelSession(client, ctx, startup.request, cancelKeys, tls, startup.bytesFromClient);
    }
    return setupAfterStartup(client, ctx, startup, false, 'tunnel');
  };

  const setupAfterStartup = async (client: Duplex, ctx: SessionContext, startup: AcceptedClientStartup, negotiated: boolean, path: ClientPath): Promise<Session> => {
    // The backend first: the client hears AuthenticationOk only once the proxy is logged in.
    const conn = await loginToBackend(ctx, startup.accepted, tls);
    const socket = conn.socket as Socket;
    let backendError: Error | null = null;
    const noteError = (err: Error): void => {
      backendError ??= err;
    };
    socket.on('error', noteError);
    let key: BackendKey | null = null;
    try {
      if (conn.backendKey) {
        key = await cancelKeys
          .issue({
            host: ctx.grant.connection.host,
            port: ctx.grant.connection.port,
            backendKey: conn.backendKey,
            context: cancelKeyContext(ctx, path),
          })
          .catch((err: unknown) => {
            // Without a key the session works; only Ctrl-C will not.
            ctx.logger.warn('No cancel key could be issued.', { error: err instanceof Error ? err.message : String(err) });
            return null;
          });
      }
      if (ctx.signal.aborted) throw new AppError('PG_SESSION_TERMINATED');
      const negotiation = protocolNegotiation(startup.message, startup.accepted.protocolOptions);
      const hello = welcome(conn, key, negotiated ? { ...negotiation, needed: false } : negotiation);
      client.write(hello);
      const issued = key;
      return new PostgresSession({
        client,
        backend: socket,
        leftover: conn.leftover,
        decoder: startup.decoder,
        pending: startup.pending,
        initialStatus: conn.transactionStatus,
        ctx,
        bytesFromClient: startup.bytesFromClient,
        bytesToClient: startup.bytesToClient + hello.length,
        backendError: () => {
          socket.off('error', noteError);
          return backendError;
        },
        tuning,
        onEnd: () => {
          if (issued) void cancelKeys.revoke(issued.processId).catch(() => undefined);
        },
      });
    } catch (err) {
      socket.destroy();
      if (key) void cancelKeys.revoke(key.processId).catch(() => undefined);
      throw err;
    }
  };

  return {
    name: 'postgres',
    setup,
    setupAfterStartup: (client, ctx, startup, negotiated) => setupAfterStartup(client, ctx, startup, negotiated, 'direct'),
    cancelDirect: (request, deps) => cancelDirect(request, { ...deps, keys: cancelKeys, tls }),
    sendError: (client: Duplex, err: AppError): void => {
      if (cancelSockets.has(client) || client.destroyed) {
        client.destroy();
        return;
      }
      const e = isAppError(err) ? err : new AppError('INTERNAL');
      if (client.writable) client.end(errorFrame(e, 'FATAL'));
      const t = setTimeout(() => client.destroy(), 1000);
      t.unref();
      client.once('close', () => clearTimeout(t));
    },
  };
};

/** The postgres handler with default options (an in-memory cancel key store, Node's CA roots). */
export const postgresHandler: PostgresProtocolHandler = createPostgresHandler();
