import type { Duplex } from 'node:stream';
import { isAppError, type Logger } from '@pa/kit';
import { sendCancel, type CancelKeyStore, type CancelRequest, type CancelTarget } from '@pa/pgwire';
import type { AuditSink } from '../../audit';
import type { Session, SessionContext, SessionResult } from '../handler';
import type { BackendTlsSettings } from './backend-login';

/** Where a session's client came in: through a tunnel (`pa connect`) or straight to the direct listener. */
export type ClientPath = 'tunnel' | 'direct';

/**
 * What a cancel key remembers of its session, besides the backend's key: the
 * routing (TLS mode), who may cancel (user, connection) and, so that a cancel
 * that arrives without a grant can still be audited against the session it
 * targets, the session's audit identity. Identifiers only, no secret.
 */
export const cancelKeyContext = (ctx: SessionContext, path: ClientPath): Record<string, string> => ({
  path,
  connectionId: ctx.grant.connection.id,
  connectionName: ctx.grant.connection.name,
  userId: ctx.grant.user.id,
  userName: ctx.grant.user.name,
  grantId: ctx.grant.jti,
  sessionId: ctx.grant.sessionId,
  tunnelId: ctx.tunnelId,
  tlsMode: ctx.grant.connection.tlsMode,
});

/** Sends the backend's own cancel for a resolved key. */
const sendBackendCancel = (target: CancelTarget, tls: BackendTlsSettings, timeoutMs: number): Promise<void> => {
  const mode = (target.context?.tlsMode ?? 'disable') as 'disable' | 'require' | 'verify-ca' | 'verify-full';
  return sendCancel({
    host: target.host,
    port: target.port,
    tls: { mode, ...(tls.ca !== undefined ? { ca: tls.ca } : {}) },
    processId: target.backendKey.processId,
    secretKey: target.backendKey.secretKey,
    timeoutMs,
  });
};

export interface DirectCancelDeps {
  readonly keys: CancelKeyStore;
  readonly tls: BackendTlsSettings;
  readonly audit: AuditSink;
  readonly logger: Logger;
  readonly timeoutMs: number;
  readonly clientAddress: string;
}

/** What became of a direct CancelRequest (the client hears nothing either way, as with PostgreSQL). */
export type DirectCancelOutcome = 'sent' | 'refused' | 'failed';

/**
 * A CancelRequest that came to the direct listener. libpq sends it on a
 * connection of its own, without TLS before PostgreSQL 17, and with no
 * password: as in PostgreSQL, the (proxy-issued, random) key is the authority.
 * Only keys issued to direct sessions are honoured this way; a tunnel
 * session's key is cancelled through a tunnel, by a grant for the same user
 * and connection. The request is audited (`sql.cancel`, against the target
 * session) before it is sent; an unknown key is logged, since there is no
 * session to audit it against.
 */
export const cancelDirect = async (request: CancelRequest, deps: DirectCancelDeps): Promise<DirectCancelOutcome> => {
  const target = await deps.keys.resolve(request.processId, request.secretKey).catch(() => null);
  const c = target?.context;
  if (!target || !c?.userId || !c.grantId) {
    deps.logger.info('Direct cancel request refused: unknown cancel key.', { clientAddress: deps.clientAddress });
    return 'refused';
  }
  const audit = deps.audit.session(
    {
      actor: { id: c.userId, name: c.userName ?? '' },
      connectionId: c.connectionId ?? '',
      connectionName: c.connectionName ?? '',
      grantId: c.grantId,
      sessionId: c.sessionId ?? '',
      protocol: 'postgres',
    },
    { tunnelId: c.tunnelId ?? '' },
  );
  const via = { clientAddress: deps.clientAddress, clientPath: 'direct' };
  if (c.path !== 'direct') {
    await audit.decision('sql.cancel', 'denied', { ...via, targetTunnelId: c.tunnelId ?? null, reason: 'key issued to a tunnel session: cancel through its tunnel' }).catch(() => undefined);
    return 'refused';
  }
  try {
    await audit.decision('sql.cancel', 'allowed', { ...via, targetTunnelId: c.tunnelId ?? null });
    await sendBackendCancel(target, deps.tls, deps.timeoutMs);
    return 'sent';
  } catch (err) {
    deps.logger.warn('Direct cancel request failed.', { code: isAppError(err) ? err.code : 'INTERNAL' });
    return 'failed';
  }
};

/**
 * A CancelRequest (Ctrl-C in psql) arrives on a connection of its own, here a
 * tunnel of its own. The key is one the proxy issued (BackendKeyData); the
 * store maps it to the backend's real key, which no client ever sees. A key
 * is honoured only for the same user and connection it was issued to; the
 * request is audited (`sql.cancel`) before it is sent, and the client
 * connection is closed without an answer, as PostgreSQL does.
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 */
export class CancelSession implements Session {
  constructor(
    private readonly client: Duplex,
    private readonly ctx: SessionContext,
    private readonly request: CancelRequest,
    private readonly keys: CancelKeyStore,
    private readonly tls: BackendTlsSettings,
    private readonly bytesFromClient: number,
  ) {}

  async run(): Promise<SessionResult> {
    const { ctx, request } = this;
    let reason = 'cancel_request';
    try {
      const target = await this.keys.resolve(request.processId, request.secretKey);
      const ours =
        target !== null && target.context?.connectionId === ctx.grant.connection.id && target.context.userId === ctx.grant.user.id;
      if (!target || !ours) {
        reason = 'cancel_refused';
        await ctx.audit.decision('sql.cancel', 'denied', { reason: target ? 'key issued to another user or connection' : 'unknown cancel key' }).catch(() => undefined);
        return this.close(reason);
      }
      await ctx.audit.decision('sql.cancel', 'allowed', { targetTunnelId: target.context?.tunnelId ?? null });
      await sendBackendCancel(target, this.tls, ctx.settings.connectTimeoutMs);
    } catch (err) {
      reason = 'cancel_failed';
      ctx.logger.warn('Cancel request failed.', { code: isAppError(err) ? err.code : 'INTERNAL' });
    }
    return this.close(reason);
  }

  private close(reason: string): SessionResult {
    this.client.destroy();
    return { bytesFromClient: this.bytesFromClient, bytesToClient: 0, reason, requests: 1 };
  }
}
