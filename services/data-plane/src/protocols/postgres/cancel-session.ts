import type { Duplex } from 'node:stream';
import { isAppError } from '@pa/kit';
import { sendCancel, type CancelKeyStore, type CancelRequest } from '@pa/pgwire';
import type { Session, SessionContext, SessionResult } from '../handler';
import type { BackendTlsSettings } from './backend-login';

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
      const mode = (target.context?.tlsMode ?? 'disable') as 'disable' | 'require' | 'verify-ca' | 'verify-full';
      await sendCancel({
        host: target.host,
        port: target.port,
        tls: { mode, ...(this.tls.ca !== undefined ? { ca: this.tls.ca } : {}) },
        processId: target.backendKey.processId,
        secretKey: target.backendKey.secretKey,
        timeoutMs: ctx.settings.connectTimeoutMs,
      });
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
