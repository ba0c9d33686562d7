import type { Socket } from 'node:net';
import { newId, toAppError } from '@pa/kit';
import type { BackendCredentials } from '@pa/grants';
import { createSessionFixture, type SessionFixture, type SessionFixtureOptions } from '../../../src/testing/session-fixture';
import { tcpServer } from '../../../src/testing/socket-pair';
import type { SessionContext, SessionResult } from '../../../src/protocols/handler';
import { createPostgresHandler, type PostgresHandlerOptions } from '../../../src/protocols/postgres/postgres-handler';

/**
 * The postgres handler exposed on a local TCP port, as the tunnel listener
 * would run it after a 101: each accepted socket gets a SessionContext (from
 * one session fixture: a real signed grant, a policy compiled by the real
 * engine, a real audit spool), then setup → run, or sendError on failure.
 */
export interface ProxyHarness {
  readonly port: number;
  readonly fixture: SessionFixture;
  /** Results of every session run so far (in start order). */
  readonly results: Promise<SessionResult>[];
  /** Sockets the harness accepted. */
  readonly sockets: Socket[];
  close(): Promise<void>;
}

export interface ProxyHarnessOptions {
  readonly host: string;
  readonly port: number;
  readonly database?: string | null;
  readonly credentials: BackendCredentials | null;
  readonly tlsMode?: SessionFixtureOptions['tlsMode'];
  readonly policies: SessionFixtureOptions['policies'];
  readonly settings?: SessionFixtureOptions['settings'];
  readonly audit?: SessionFixtureOptions['audit'];
  readonly handler?: PostgresHandlerOptions;
  /** Adjusts each connection's context (default: statement rate limit off). */
  readonly context?: (ctx: SessionContext) => SessionContext;
}

const unlimited = (ctx: SessionContext): SessionContext => ({ ...ctx, consumeRequest: () => Promise.resolve({ allowed: true, source: 'local' as const }) });

export const startProxy = async (o: ProxyHarnessOptions): Promise<ProxyHarness> => {
  const fixture = await createSessionFixture({
    protocol: 'postgres',
    host: o.host,
    port: o.port,
    database: o.database ?? null,
    credentials: o.credentials,
    tlsMode: o.tlsMode ?? 'disable',
    policies: o.policies,
    ...(o.settings ? { settings: o.settings } : {}),
    ...(o.audit ? { audit: o.audit } : {}),
  });
  const handler = createPostgresHandler(o.handler ?? {});
  const results: Promise<SessionResult>[] = [];
  const sockets: Socket[] = [];
  const server = await tcpServer((socket) => {
    sockets.push(socket);
    socket.setNoDelay(true);
    const tunnelId = newId('tun');
    const base = fixture.ctx.audit;
    // One fixture serves every connection: stamp each connection's own tunnel id on its events
    // (sessionAudit spreads the details after its own tunnelId, so this one wins).
    const audit: SessionContext['audit'] = {
      canAccept: () => base.canAccept(),
      decision: (action, outcome, details) => base.decision(action, outcome, { ...details, tunnelId }),
      outcome: (action, outcome, details) => base.outcome(action, outcome, { ...details, tunnelId }),
    };
    const ctx = (o.context ?? unlimited)({ ...fixture.ctx, tunnelId, audit });
    results.push(
      handler.setup(socket, ctx).then(
        (session) => session.run(),
        (err: unknown) => {
          handler.sendError(socket, toAppError(err));
          return { bytesFromClient: 0, bytesToClient: 0, reason: `setup_failed:${toAppError(err).code}` };
        },
      ),
    );
  });
  return {
    port: server.port,
    fixture,
    results,
    sockets,
    close: async () => {
      await server.close();
      await Promise.allSettled(results);
      await fixture.close();
    },
  };
};
