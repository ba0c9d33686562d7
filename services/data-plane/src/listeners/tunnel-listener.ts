import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AppError, newId, toAppError, type KeyPair, type Logger } from '@pa/kit';
import { decryptCredentials, GrantVerifier, type BackendCredentials, type GrantClaims, type KeyStore } from '@pa/grants';
import { loadCompiledPolicy, type PolicyEngine } from '@pa/policy';
import { concurrencyError, rateLimitError, revocationError, type State } from '@pa/state';
import { acceptTunnel, parseTunnelRequest, rejectTunnel } from '@pa/tunnel';
import type { AuditSink } from '../audit';
import type { Config } from '../config';
import type { Metrics } from '../metrics';
import { sessionAudit, type ProtocolHandler, type ProtocolName } from '../protocols/handler';
import type { LiveSessions } from './live-sessions';

export interface TunnelListenerDeps {
  config: Config;
  nodeId: () => string;
  logger: Logger;
  /** The current key set (replaced on rotation). Null until the first set arrives. */
  keys: () => KeyStore | null;
  state: State;
  audit: AuditSink;
  engine: PolicyEngine;
  handlers: Readonly<Partial<Record<ProtocolName, ProtocolHandler>>>;
  live: LiveSessions;
  metrics: Metrics;
  clock?: () => Date;
  /** True once the node drains: new tunnels are refused. */
  draining: () => boolean;
  /** Certificate and key: the listener speaks HTTPS (TLS first, then the same Upgrade). Plain HTTP when absent. */
  tls?: KeyPair | null;
}

/**
 * The tunnel listener: HTTP/1.1 Upgrade requests carrying a grant, over TLS
 * when the node has a certificate (HTTPS). Admission is
 * local — signature against the cached key set, claims, then the shared state
 * (revocation from the local mirror, rate limit and concurrency in Redis with
 * a local fallback) — and never calls the control plane. After the 101 the
 * socket goes to the grant's protocol handler.
 */
export const createTunnelListener = (d: TunnelListenerDeps): Server => {
  const clock = d.clock ?? (() => new Date());
  const httpOptions: ServerOptions = { requestTimeout: d.config.tunnel.handshakeTimeoutMs, headersTimeout: d.config.tunnel.handshakeTimeoutMs, maxHeaderSize: 64 * 1024 };
  const upgradeRequired: RequestListener = (_req, res) => {
    res.writeHead(426, { 'Content-Type': 'application/problem+json', Upgrade: 'pa-tunnel/1', Connection: 'close' });
    res.end(JSON.stringify({ title: 'Upgrade Required', status: 426, code: 'VALIDATION_FAILED', detail: 'Open a tunnel with an HTTP Upgrade to pa-tunnel/1 at /v1/tunnel.' }));
  };
  // With TLS the handshake shares the tunnel handshake's deadline; a client that fails it is dropped by Node.
  const server: Server = d.tls
    ? createHttpsServer({ ...httpOptions, cert: d.tls.cert, key: d.tls.key, handshakeTimeout: d.config.tunnel.handshakeTimeoutMs }, upgradeRequired)
    : createServer(httpOptions, upgradeRequired);
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => undefined);
    void admit(req, socket, head).catch((err: unknown) => {
      d.logger.error('Tunnel admission failed unexpectedly.', { err });
      rejectTunnel(socket, err);
    });
  });
  server.on('clientError', (_err, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  // `pa connect` presents one grant for all its tunnels: verified once, then answered from memory.
  const verifier = new GrantVerifier();

  const admit = async (req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> => {
    const started = process.hrtime.bigint();
    let grant: GrantClaims | null = null;
    const refuse = (err: unknown): void => {
      const e = toAppError(err);
      d.metrics.tunnelsRefused.inc({ code: e.code });
      rejectTunnel(socket, e);
      void d.audit.outcome({
        action: 'tunnel.denied',
        outcome: 'failure',
        actor: { id: grant?.user.id ?? '', name: grant?.user.name ?? '' },
        connectionId: grant?.connection.id ?? '',
        ...(grant ? { connectionName: grant.connection.name } : {}),
        grantId: grant?.jti ?? '',
        sessionId: grant?.sessionId ?? '',
        protocol: grant?.connection.protocol ?? 'tcp',
        details: { errorCode: e.code, reason: e.message, clientAddress: req.socket.remoteAddress ?? '' },
      });
    };
    if (d.draining()) return refuse(new AppError('NOT_READY', { message: 'This node is draining; connect again (another node will take it).' }));
    if (d.live.size >= d.config.tunnel.maxTunnels) return refuse(new AppError('CONCURRENCY_LIMITED', { message: 'This node holds as many tunnels as it may.' }));
    let tunnelReq;
    try {
      tunnelReq = parseTunnelRequest(req);
    } catch (err) {
      return refuse(err);
    }
    const keys = d.keys();
    if (!keys) return refuse(new AppError('NOT_READY', { message: 'This node has no grant keys yet; try again shortly.' }));
    try {
      grant = await verifier.verify(tunnelReq.grant, { keyStore: keys, issuer: d.config.controlPlane.issuer, clock });
    } catch (err) {
      return refuse(err);
    }
    const g = grant;
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
      await audit.decision('tunnel.open', 'allowed', { clientAddress: req.socket.remoteAddress ?? '', clientLabel: tunnelReq.clientLabel });
    } catch (err) {
      lease.release();
      return refuse(err);
    }
    const abort = new AbortController();
    const endAt = g.limits.sessionEndsAt * 1000;
    const endTimer = setTimeout(() => abort.abort(new AppError('GRANT_EXPIRED', { message: 'The session reached its absolute end.' })), Math.max(0, endAt - clock().getTime()));
    endTimer.unref();
    d.live.add(tunnelId, { grantId: g.jti, userId: g.user.id, sessionId: g.sessionId, protocol: g.connection.protocol, abort });
    d.metrics.tunnelsOpen.inc({ protocol: g.connection.protocol });
    let credentials: Promise<BackendCredentials | null> | null = null;
    acceptTunnel(socket, tunnelId);
    socket.setNoDelay(true);
    if (head.length) socket.unshift(head);
    d.metrics.handshakeSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    const logger = d.logger.child({ tunnelId, grantId: g.jti, userId: g.user.id, protocol: g.connection.protocol });
    const ctx = {
      tunnelId,
      nodeId: d.nodeId(),
      grant: g,
      policy,
      engine: d.engine,
      credentials: () => (credentials ??= g.credentials ? decryptCredentials(g.credentials, keys) : Promise.resolve(null)),
      audit,
      consumeRequest: () => d.state.rateLimits.consumeRequest(g.user.id, g.connection.id),
      signal: abort.signal,
      logger,
      clock,
      settings: { idleTimeoutMs: d.config.limits.idleTimeoutSeconds * 1000, connectTimeoutMs: d.config.limits.connectTimeoutMs, maxHeaderBytes: d.config.limits.maxHeaderBytes },
    };
    const t0 = Date.now();
    const cleanup = () => {
      clearTimeout(endTimer);
      d.live.remove(tunnelId);
      d.metrics.tunnelsOpen.dec({ protocol: g.connection.protocol });
      lease.release();
    };
    let session;
    try {
      session = await handler.setup(socket, ctx);
    } catch (err) {
      const e = toAppError(err);
      if (e.code === 'INTERNAL') logger.error('Session setup failed.', { err });
      else logger.info('Session setup refused.', { code: e.code });
      handler.sendError(socket, e);
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
      socket.destroy();
    } finally {
      cleanup();
    }
  };
  return server;
};
