import { once } from 'node:events';
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { Protocol, type KeySet } from '@pa/contracts';
import type { KeyStore } from '@pa/grants';
import { AppError, dialableHost, type Logger } from '@pa/kit';
import { createPolicyEngine, initPolicyEngine } from '@pa/policy';
import { createState, type State } from '@pa/state';
import { AuditRecorder, AuditShipper, AuditSpool, registerAuditMetrics, type AuditTransport } from './audit';
import { nodeIdOf, requireNodeToken, type Config } from './config';
import { ControlPlaneClient } from './control-plane-client';
import { LiveSessions } from './listeners/live-sessions';
import { createAdmission } from './listeners/admission';
import { createPostgresDirectListener } from './listeners/postgres-direct-listener';
import { createTunnelListener, type TunnelListenerDeps } from './listeners/tunnel-listener';
import { createMetrics } from './metrics';
import { loadNodeTls, TunnelCertificate, warnAboutPlaintext } from './tls';
import type { ProtocolHandler, ProtocolName } from './protocols/handler';
import { PROTOCOL_HANDLERS } from './protocols/registry';

export const NODE_VERSION = '0.1.0';

export interface StartNodeOptions {
  /** Shared state; the all-in-one runner passes the control plane's in-process state. Built from config otherwise. */
  state?: State;
  /** Key set source for tests that do not run a control plane (the gRPC key watch is skipped). */
  keys?: KeyStore;
  /** Audit transport override (tests); the gRPC IngestAudit transport otherwise. */
  transport?: AuditTransport;
  handlers?: Readonly<Partial<Record<ProtocolName, ProtocolHandler>>>;
  clock?: () => Date;
}

export interface RunningNode {
  nodeId: string;
  /** Base URL of the tunnel listener. */
  tunnelUrl: string;
  /** Base URL of the admin listener (health, readiness, metrics). */
  adminUrl: string;
  /** host:port of the direct PostgreSQL listener, when configured (PA_PG_DIRECT_PORT). */
  postgresDirectAddress: string | null;
  live: LiveSessions;
  /** Resolves once the node has a key set. */
  keysReady: Promise<void>;
  /** Graceful stop: refuse new tunnels, let live ones finish until the drain deadline, flush audit. */
  stop(): Promise<void>;
}

const listen = async (server: NetServer, port: number, host: string): Promise<number> => {
  server.listen(port, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
};

const WIRE_PROTOCOL: Record<ProtocolName, Protocol> = { postgres: Protocol.POSTGRES, http: Protocol.HTTP, tcp: Protocol.TCP };

/** Starts a data-plane node: tunnel listener, admin listener, key watch, audit spool and shipper. */
export const startNode = async (config: Config, logger: Logger, options: StartNodeOptions = {}): Promise<RunningNode> => {
  const stops: Array<() => Promise<void>> = [];
  const clock = options.clock ?? (() => new Date());
  const handlers = options.handlers ?? PROTOCOL_HANDLERS;
  try {
    // TLS files first: a missing or mismatched file stops the start before anything else runs.
    const tls = loadNodeTls(config);
    await initPolicyEngine();
    const engine = createPolicyEngine();
    stops.push(async () => engine.close());
    let state = options.state;
    if (!state) {
      const own = createState({
        ...(config.redis.url ? { redis: config.redis.url } : {}),
        keyPrefix: config.redis.keyPrefix,
        timeoutMs: config.redis.timeoutMs,
        logger,
        rateLimits: {
          tunnelPerUser: { points: config.limits.tunnelsPerUserPerMinute, durationSeconds: 60 },
          requestPerUser: { points: config.limits.requestsPerUserPerSecond, durationSeconds: 1 },
        },
      });
      await own.revocations.start();
      stops.push(() => own.close());
      state = own;
    }
    const metrics = createMetrics();
    const live = new LiveSessions();
    const unsubscribe = state.revocations.onRevoked((r) => {
      const n = live.revoke(r);
      if (n > 0) logger.info('Revocation closed live tunnels.', { kind: r.kind, id: r.id, tunnels: n });
    });
    stops.push(async () => unsubscribe());

    // Listen first: the node id and advertised URL depend on the tunnel port.
    let nodeId = config.nodeId ?? '';
    let draining = false;
    let keys: KeyStore | null = options.keys ?? null;
    let markKeysReady: () => void = () => undefined;
    const keysReady = keys ? Promise.resolve() : new Promise<void>((r) => (markKeysReady = r));
    let recorder: AuditRecorder | null = null;
    const listenerDeps: TunnelListenerDeps = {
      config,
      nodeId: () => nodeId,
      logger,
      keys: () => keys,
      state,
      audit: {
        canAccept: () => recorder?.canAccept() ?? false,
        decision: (d) => (recorder ? recorder.decision(d) : Promise.reject(new AppError('AUDIT_UNAVAILABLE'))),
        outcome: (d) => (recorder ? recorder.outcome(d) : Promise.resolve(false)),
        // Admission refuses while there is no recorder (canAccept is false), so a session never gets these.
        session: (fields, prefix) =>
          recorder
            ? recorder.session(fields, prefix)
            : { canAccept: () => false, decision: () => Promise.reject(new AppError('AUDIT_UNAVAILABLE')), outcome: () => Promise.resolve(false) },
      },
      engine,
      handlers,
      live,
      metrics,
      clock,
      draining: () => draining,
      tls: tls.tunnel,
    };
    const tunnelServer = createTunnelListener(listenerDeps);
    // A rotated certificate is picked up without a restart (PA_TUNNEL_TLS_RELOAD_SECONDS).
    const tunnelCert = tls.tunnel ? new TunnelCertificate(config, tls.tunnel, logger) : null;
    if (tunnelCert) {
      stops.push(async () => tunnelCert.stop());
      tunnelCert.onReload((pair) => (tunnelServer as HttpsServer).setSecureContext({ cert: pair.cert, key: pair.key }));
    }
    const tunnelPort = await listen(tunnelServer, config.tunnel.port, config.tunnel.host);
    const sockets = new Set<Duplex>();
    tunnelServer.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    nodeId = nodeIdOf(config, tunnelPort);
    const host = dialableHost(config.tunnel.host);
    const tunnelUrl = config.tunnel.publicUrl ?? `${tls.tunnel ? 'https' : 'http'}://${host}:${tunnelPort}`;
    const nodeLogger = logger.child({ nodeId });
    warnAboutPlaintext(config, tls, tunnelUrl, nodeLogger);

    const spool = await AuditSpool.open({ dir: join(resolve(config.dataDir), 'spool', nodeId), capacityBytes: config.audit.spoolCapacityBytes, durability: config.audit.durability,
      groupCommitWindowMs: config.audit.groupCommitMs ?? (config.audit.durability === 'written' ? 10 : 2),
      logger: nodeLogger,
    });
    recorder = new AuditRecorder({ spool, nodeId, logger: nodeLogger });

    let cpClient: ControlPlaneClient | null = null;
    let transport = options.transport;
    if (!options.keys || !transport) {
      cpClient = new ControlPlaneClient({
        address: config.controlPlane.grpcAddress,
        token: requireNodeToken(config.controlPlane.token),
        tls: tls.controlPlane,
        logger: nodeLogger,
        node: () => ({ nodeId, version: NODE_VERSION, tunnelUrl, protocols: (Object.keys(handlers) as ProtocolName[]).map((p) => WIRE_PROTOCOL[p]) }),
        load: () => ({
          sessions: [...live.countByProtocol()].map(([p, n]) => ({ protocol: WIRE_PROTOCOL[p as ProtocolName], liveSessions: n })),
          auditSpoolDepth: spool.stats().pendingEvents,
          draining,
        }),
        onKeys: (store: KeyStore, set: KeySet) => {
          if (options.keys) return;
          keys = store;
          nodeLogger.info('Key set received.', { version: set.version, grantKeys: set.grantVerificationKeys.length });
          markKeysReady();
        },
      });
      cpClient.start();
      transport ??= cpClient;
    }
    const shipper = new AuditShipper({ spool, transport, logger: nodeLogger });
    shipper.start();
    registerAuditMetrics(metrics.registry, { spool, shipper });

    const admin = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/healthz') {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: 'ok', nodeId }));
        return;
      }
      if (path === '/readyz') {
        const checks = {
          keys: keys !== null,
          audit: spool.canAccept(),
          revocations: !state.revocations.health().stale,
          draining,
          controlPlane: cpClient ? cpClient.connected : true,
        };
        const ready = checks.keys && checks.audit && checks.revocations && !draining;
        res.writeHead(ready ? 200 : 503, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: ready ? 'ready' : 'not ready', nodeId, checks, liveTunnels: live.size }));
        return;
      }
      if (path === '/metrics') {
        metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
        return;
      }
      res.writeHead(404, { 'Content-Type': 'application/problem+json' }).end(JSON.stringify({ status: 404, code: 'ROUTE_NOT_FOUND', title: 'No such endpoint.' }));
    });
    const adminPort = await listen(admin, config.admin.port, config.admin.host);
    const adminHost = dialableHost(config.admin.host);
    // Direct PostgreSQL connections (grant as the password over TLS), when configured.
    let postgresDirect: { server: NetServer; address: string } | null = null;
    if (config.postgresDirect.port !== undefined && tunnelCert) {
      const server = createPostgresDirectListener(listenerDeps, createAdmission(listenerDeps), tunnelCert);
      const directHost = config.postgresDirect.host ?? config.tunnel.host;
      const port = await listen(server, config.postgresDirect.port, directHost);
      server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      postgresDirect = { server, address: `${dialableHost(directHost)}:${port}` };
    }
    nodeLogger.info('Data-plane node listening.', { tunnelUrl, admin: `http://${adminHost}:${adminPort}`, ...(postgresDirect ? { postgresDirect: postgresDirect.address } : {}) });

    const stop = async (): Promise<void> => {
      if (draining) return;
      draining = true;
      nodeLogger.info('Draining.', { liveTunnels: live.size });
      await cpClient?.deregister();
      tunnelServer.close();
      postgresDirect?.server.close();
      const deadline = Date.now() + config.drainTimeoutSeconds * 1000;
      while (live.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      live.abortAll(new AppError('NOT_READY', { message: 'The node is shutting down.' }));
      for (const s of sockets) s.destroy();
      await shipper.flush(Math.max(1000, deadline - Date.now()));
      await shipper.stop();
      await spool.close();
      cpClient?.close();
      await new Promise((r) => admin.close(r));
      admin.closeAllConnections();
      for (const s of stops.reverse()) await s().catch(() => undefined);
      nodeLogger.info('Stopped.');
    };
    return { nodeId, tunnelUrl, adminUrl: `http://${adminHost}:${adminPort}`, postgresDirectAddress: postgresDirect?.address ?? null, live, keysReady, stop };
  } catch (err) {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    throw err;
  }
};
