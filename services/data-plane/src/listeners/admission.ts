import type { Duplex } from 'node:stream';
import { AppError, newId, toAppError } from '@pa/kit';
import { CredentialsCache, GrantVerifier, type BackendCredentials, type GrantClaims } from '@pa/grants';
import { loadCompiledPolicy } from '@pa/policy';
import { concurrencyError, rateLimitError, revocationError } from '@pa/state';
import { sessionAudit, type ProtocolHandler, type ProtocolName, type Session, type SessionContext } from '../protocols/handler';
import type { TunnelListenerDeps } from './tunnel-listener';

/** One client asking to be let in, as its listener saw it. */
export interface AdmissionRequest {
  /** The grant the client presented (compact JWS). */
  readonly grant: string;
  readonly clientAddress: string;
  /** What the client calls itself (the tunnel's client label), if anything. */
  readonly clientLabel: string | null;
  /** The connection, from the moment the client is admitted. */
  readonly socket: Duplex;
  /** Only grants for this protocol are served here (a direct PostgreSQL listener serves postgres grants only). */
  readonly protocol?: ProtocolName;
  /** Tells the client it was refused, in its transport's own way (HTTP problem, PostgreSQL FATAL). */
  refuse(err: AppError): void;
  /** Tells the client it was admitted (the tunnel's 101); called once, before the handler's setup. */
  accept(tunnelId: string): void;
  /** Sets the session up (default: the handler's `setup` on `socket`). */
  setup?(handler: ProtocolHandler, ctx: SessionContext): Promise<Session>;
}

export interface Admission {
  /**
   * Admits a client and runs its session to the end. Verification is local:
   * the grant's signature against the cached key set and its claims, then the
   * shared state (revocation from the local mirror, rate limit and
   * concurrency lease) and a durable `tunnel.open` audit decision. A refusal
   * is counted, audited (`tunnel.denied`) and reported through `t.refuse`;
   * `preError` (the listener could not even read the request) is refused so.
   */
  admit(t: AdmissionRequest, preError?: unknown): Promise<void>;
  /**
   * Whether this node would still take a grant, opening nothing: its
   * signature and claims against the cached key set, and revocation from the
   * local mirror. Resolves with the claims; rejects with the AppError a
   * tunnel would be refused with (GRANT_REVOKED, AUTH_SESSION_REVOKED,
   * GRANT_EXPIRED…). Neither audited nor counted against any limit: it grants
   * nothing.
   */
  status(grant: string): Promise<GrantClaims>;
}

/** The admission shared by the node's listeners (the tunnel listener and the direct PostgreSQL listener). */
export const createAdmission = (d: TunnelListenerDeps): Admission => {
  const clock = d.clock ?? (() => new Date());
  // `pa connect` presents one grant for all its tunnels: verified once, then answered from memory.
  const verifier = new GrantVerifier();
  // …and its backend credentials decrypted once (per key set, until the grant expires).
  const credentialsCache = new CredentialsCache();

  const status = async (token: string): Promise<GrantClaims> => {
    const keys = d.keys();
    if (!keys) throw new AppError('NOT_READY', { message: 'This node has no grant keys yet; try again shortly.' });
    const g = await verifier.verify(token, { keyStore: keys, issuer: d.config.controlPlane.issuer, clock });
    const revoked = revocationError(d.state.revocations.check({ grantId: g.jti, userId: g.user.id, sessionId: g.sessionId }));
    if (revoked) throw revoked;
    return g;
  };

  const admit = async (t: AdmissionRequest, preError: unknown = null): Promise<void> => {
    const started = process.hrtime.bigint();
    let grant: GrantClaims | null = null;
    const refuse = (err: unknown): void => {
      const e = toAppError(err);
      d.metrics.tunnelsRefused.inc({ code: e.code });
      t.refuse(e);
      void d.audit.outcome({
        action: 'tunnel.denied',
        outcome: 'failure',
        actor: { id: grant?.user.id ?? '', name: grant?.user.name ?? '' },
        connectionId: grant?.connection.id ?? '',
        ...(grant ? { connectionName: grant.connection.name } : {}),
        grantId: grant?.jti ?? '',
        sessionId: grant?.sessionId ?? '',
        protocol: grant?.connection.protocol ?? t.protocol ?? 'tcp',
        details: { errorCode: e.code, reason: e.message, clientAddress: t.clientAddress },
      });
    };
    if (d.draining()) return refuse(new AppError('NOT_READY', { message: 'This node is draining; connect again (another node will take it).' }));
    if (d.live.size >= d.config.tunnel.maxTunnels) return refuse(new AppError('CONCURRENCY_LIMITED', { message: 'This node holds as many tunnels as it may.' }));
    if (preError !== null) return refuse(preError);
    const keys = d.keys();
    if (!keys) return refuse(new AppError('NOT_READY', { message: 'This node has no grant keys yet; try again shortly.' }));
    try {
      grant = await verifier.verify(t.grant, { keyStore: keys, issuer: d.config.controlPlane.issuer, clock });
    } catch (err) {
      return refuse(err);
    }
    const g = grant;
    if (t.protocol !== undefined && g.connection.protocol !== t.protocol) {
      return refuse(new AppError('VALIDATION_FAILED', { message: `This listener serves ${t.protocol} grants; the grant is for ${g.connection.protocol} (use pa connect).` }));
    }
    const handler = d.handlers[g.connection.protocol];
    if (!handler) return refuse(new AppError('VALIDATION_FAILED', { message: `This node does not serve ${g.connection.protocol}.` }));
    const revoked = revocationError(d.state.revocations.check({ grantId: g.jti, userId: g.user.id, sessionId: g.sessionId }));
    if (revoked) return refuse(revoked);
    if (!d.audit.canAccept()) return refuse(new AppError('AUDIT_SPOOL_FULL'));
    let policy;
    try {
      policy = loadCompiledPolicy(g.policy);
    } catch (err) {
      return refuse(err);
    }
    // The rate limit and the concurrency lease are independent Redis round trips: made together.
    const [rate, acquired] = await Promise.all([
      d.state.rateLimits.consumeTunnel(g.user.id, g.connection.id),
      d.state.concurrency.acquire({ grantId: g.sessionId, userId: g.user.id, maxPerGrant: g.limits.maxConnections, maxPerUser: d.config.limits.maxTunnelsPerUser }),
    ]);
    const limited = rateLimitError(rate);
    if (limited) {
      if (acquired.ok) void acquired.lease.release();
      return refuse(limited);
    }
    const capped = concurrencyError(acquired);
    if (capped || !acquired.ok) return refuse(capped);
    const lease = acquired.lease;
    const tunnelId = newId('tun');
    const audit = sessionAudit(d.audit, g, g.connection.protocol, tunnelId);
    try {
      await audit.decision('tunnel.open', 'allowed', { clientAddress: t.clientAddress, clientLabel: t.clientLabel });
    } catch (err) {
      void lease.release();
      return refuse(err);
    }
    const abort = new AbortController();
    const endAt = g.limits.sessionEndsAt * 1000;
    const endTimer = setTimeout(() => abort.abort(new AppError('GRANT_EXPIRED', { message: 'The session reached its absolute end.' })), Math.max(0, endAt - clock().getTime()));
    endTimer.unref();
    d.live.add(tunnelId, { grantId: g.jti, userId: g.user.id, sessionId: g.sessionId, protocol: g.connection.protocol, abort });
    d.metrics.tunnelsOpen.inc({ protocol: g.connection.protocol });
    let credentials: Promise<BackendCredentials | null> | null = null;
    t.accept(tunnelId);
    d.metrics.handshakeSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    const logger = d.logger.child({ tunnelId, grantId: g.jti, userId: g.user.id, protocol: g.connection.protocol });
    const ctx: SessionContext = {
      tunnelId,
      nodeId: d.nodeId(),
      grant: g,
      policy,
      engine: d.engine,
      credentials: () => (credentials ??= g.credentials ? credentialsCache.get(g.credentials, keys, g.exp * 1000) : Promise.resolve(null)),
      audit,
      consumeRequest: () => d.state.rateLimits.consumeRequest(g.user.id, g.connection.id),
      signal: abort.signal,
      logger,
      clock,
      settings: { idleTimeoutMs: d.config.limits.idleTimeoutSeconds * 1000, connectTimeoutMs: d.config.limits.connectTimeoutMs, maxHeaderBytes: d.config.limits.maxHeaderBytes },
    };
    const t0 = Date.now();
    const cleanup = (): void => {
      clearTimeout(endTimer);
      d.live.remove(tunnelId);
      d.metrics.tunnelsOpen.dec({ protocol: g.connection.protocol });
      void lease.release();
    };
    let session;
    try {
      session = await (t.setup ? t.setup(handler, ctx) : handler.setup(t.socket, ctx));
    } catch (err) {
      const e = toAppError(err);
      if (e.code === 'INTERNAL') logger.error('Session setup failed.', { err });
      else logger.info('Session setup refused.', { code: e.code });
      handler.sendError(t.socket, e);
      cleanup();
      void audit.outcome('session.start', 'failure', { errorCode: e.code, reason: e.message });
      return;
    }
    void audit.outcome('session.start', 'success', {});
    try {
      const result = await session.run();
      d.metrics.bytes.inc({ direction: 'up', protocol: g.connection.protocol }, result.bytesFromClient);
      d.metrics.bytes.inc({ direction: 'down', protocol: g.connection.protocol }, result.bytesToClient);
      void audit.outcome('session.end', 'success', { reason: result.reason, bytesUp: result.bytesFromClient, bytesDown: result.bytesToClient, durationMs: Date.now() - t0, ...(result.requests !== undefined ? { requests: result.requests } : {}) });
    } catch (err) {
      logger.error('Session failed.', { err });
      void audit.outcome('session.end', 'error', { reason: 'internal_error', durationMs: Date.now() - t0 });
      t.socket.destroy();
    } finally {
      cleanup();
    }
  };
  return { admit, status };
};
