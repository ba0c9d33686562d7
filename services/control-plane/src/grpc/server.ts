import { createHash, timingSafeEqual } from 'node:crypto';
import { Metadata, Server, status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import {
  AuditAckStatus,
  AuditOutcome,
  GrantServiceService,
  NodeServiceService,
  Protocol,
  dateFromTimestamp,
  timestampFromDate,
  type AuditEvent as WireAuditEvent,
  type Grant,
  type GrantServiceServer,
  type Jwk,
  type KeySet,
  type NodeServiceServer,
  type WatchKeysRequest,
  type WatchKeysResponse,
} from '@pa/contracts';
import { AppError, toAppError, type Logger } from '@pa/kit';
import type { AuditEventInput, AuditOutcome as StoredOutcome } from '../domain/audit/audit-log';
import { foreignEventReason, isOwnEvent, reportForeignEvents, type ForeignEvent } from '../domain/audit/node-events';
import type { IssuedGrant } from '../domain/grants/grants';
import type { Principal, RequestMeta } from '../domain/permissions';
import type { ControlPlane } from '../services';
import { readSpooledEvent } from './spooled-events';
import { requireNodeCertificate, serverCredentials, type GrpcTls, type PeerCall } from './tls';

/** The one gRPC error edge: AppError → status code, safe message, and `pa-error-code` metadata. */
export const toGrpcError = (err: unknown): { code: number; details: string; metadata: Metadata } => {
  const e = toAppError(err);
  const metadata = new Metadata();
  metadata.set('pa-error-code', e.code);
  if (typeof e.meta.retryAfterSeconds === 'number') metadata.set('retry-after', String(e.meta.retryAfterSeconds));
  return { code: e.spec.grpc, details: e.message, metadata };
};

const unary =
  <Req, Res>(logger: Logger, fn: (call: ServerUnaryCall<Req, Res>) => Promise<Res>) =>
  (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    fn(call).then(
      (res) => callback(null, res),
      (err: unknown) => {
        const e = toAppError(err);
        if (e.code === 'INTERNAL') logger.error('gRPC call failed.', { err, method: call.getPath() });
        callback(toGrpcError(e));
      },
    );
  };

const bearer = (md: Metadata): string => {
  const v = md.get('authorization')[0];
  const m = typeof v === 'string' ? /^Bearer (\S+)$/i.exec(v) : null;
  if (!m) throw new AppError('AUTH_REQUIRED', { message: 'Send "authorization: Bearer <token>" in the call metadata.' });
  return m[1] as string;
};

const metaOf = (call: ServerUnaryCall<unknown, unknown>): RequestMeta => ({
  sourceIp: call.getPeer().replace(/^ipv[46]:/, '').replace(/:\d+$/, ''),
  userAgent: String(call.metadata.get('user-agent')[0] ?? '').slice(0, 300),
});

const PROTOCOL_WIRE: Record<IssuedGrant['protocol'], Protocol> = { postgres: Protocol.POSTGRES, http: Protocol.HTTP, tcp: Protocol.TCP };
const PROTOCOL_NAME: Partial<Record<Protocol, string>> = { [Protocol.POSTGRES]: 'postgres', [Protocol.HTTP]: 'http', [Protocol.TCP]: 'tcp' };
const OUTCOME_NAME: Partial<Record<AuditOutcome, StoredOutcome>> = {
  [AuditOutcome.ALLOWED]: 'allowed',
  [AuditOutcome.DENIED]: 'denied',
  [AuditOutcome.SUCCEEDED]: 'success',
  [AuditOutcome.FAILED]: 'failure',
};

const toWireGrant = (g: IssuedGrant): Grant => ({
  grantToken: g.token,
  grantId: g.grantId,
  expiresAt: timestampFromDate(g.expiresAt),
  protocol: PROTOCOL_WIRE[g.protocol],
  tunnelUrls: g.tunnelUrls,
  connectionId: g.connectionId,
  connectionName: g.connectionName,
  sessionId: g.sessionId,
  sessionEndsAt: timestampFromDate(g.sessionEndsAt),
  renewAt: timestampFromDate(g.renewAt),
});

const toWireJwk = (jwk: Record<string, unknown>, withPrivate: boolean): Jwk => ({
  kid: String(jwk.kid ?? ''),
  kty: String(jwk.kty ?? ''),
  crv: String(jwk.crv ?? ''),
  alg: String(jwk.alg ?? ''),
  use: String(jwk.use ?? ''),
  x: String(jwk.x ?? ''),
  d: withPrivate ? String(jwk.d ?? '') : '',
});

const EVENT_ID = /^evt_[0-9a-hjkmnp-tv-z]{26}$/;
const STORED_OUTCOMES = new Set<unknown>(['success', 'failure', 'denied', 'allowed', 'error'] satisfies StoredOutcome[]);

/** A PostgreSQL data exception (class 22: bad datetime, NUL in text or JSON…): the event can never be stored as sent. */
const isDataException = (err: unknown): boolean => {
  const cause = err instanceof AppError ? err.cause : err;
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? (cause as { code: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('22');
};

/** Maps a shipped event to the stored form; everything but the ids goes into details. */
const fromWireEvent = (e: WireAuditEvent) => {
  let decision: Record<string, unknown> = {};
  if (e.decisionJson) {
    const parsed: unknown = JSON.parse(e.decisionJson);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) decision = parsed as Record<string, unknown>;
  }
  const details: Record<string, unknown> = { ...decision, protocol: PROTOCOL_NAME[e.protocol] ?? 'unknown' };
  if (e.connectionName) details.connectionName = e.connectionName;
  if (e.errorCode) details.errorCode = e.errorCode;
  if (e.errorMessage) details.errorMessage = e.errorMessage;
  if (e.bytesUp || e.bytesDown) Object.assign(details, { bytesUp: e.bytesUp, bytesDown: e.bytesDown });
  if (e.durationMs) details.durationMs = e.durationMs;
  if (e.rows) details.rows = e.rows;
  // The decision's exact outcome when it is one the audit trail knows, else the wire outcome.
  const outcome = (STORED_OUTCOMES.has(decision.outcome) ? (decision.outcome as StoredOutcome) : undefined) ?? OUTCOME_NAME[e.outcome];
  return {
    id: e.eventId,
    time: e.time ? dateFromTimestamp(e.time) : new Date(),
    action: e.action,
    outcome: (outcome ?? 'error') as StoredOutcome,
    actor: { id: e.actorUserId || null, name: e.actorUserName || null },
    connectionId: e.connectionId || undefined,
    grantId: e.grantId || undefined,
    sessionId: e.sessionId || undefined,
    nodeId: e.nodeId || undefined,
    details,
  };
};

export interface GrpcServerOptions {
  /** The node token nodes must present. */
  nodeToken: string;
  /** How often every replica re-reads key rings (rotations by other replicas). */
  keyPollMs?: number;
  /** TLS for the listener (see `loadGrpcTls`); plaintext when absent. */
  tls?: GrpcTls | null;
}

/**
 * The control plane's gRPC listener: GrantService for users (their access
 * token in metadata) and NodeService for data-plane nodes (the node token and,
 * with mutual TLS configured, a client certificate signed by the node CA).
 */
export const createGrpcServer = (cp: ControlPlane, options: GrpcServerOptions) => {
  const { logger } = cp;
  const tokenHash = createHash('sha256').update(options.nodeToken).digest();
  const tls = options.tls ?? null;
  /** Mutual TLS first (when configured), then the node token: both must hold. */
  const authenticateNode = (call: PeerCall & { metadata: Metadata }, nodeId: string | undefined): void => {
    requireNodeCertificate(tls, call, nodeId);
    const md = call.metadata;
    const presented = createHash('sha256').update(bearer(md)).digest();
    if (!timingSafeEqual(presented, tokenHash)) throw new AppError('AUTH_TOKEN_INVALID', { message: 'The node token is not valid.' });
  };
  const user = async (md: Metadata): Promise<Principal> => cp.auth.authenticate(bearer(md));

  const grants: GrantServiceServer = {
    issueGrant: unary(logger, async (call) => {
      const p = await user(call.metadata);
      if (!call.request.connectionName) throw new AppError('VALIDATION_FAILED', { details: [{ path: 'connection_name', message: 'required' }] });
      return { grant: toWireGrant(await cp.grants.issue(p, call.request.connectionName, call.request.requestedTtlSeconds, metaOf(call))) };
    }),
    renewGrant: unary(logger, async (call) => {
      const p = await user(call.metadata);
      const cur = call.request.current;
      if (!cur) throw new AppError('VALIDATION_FAILED', { details: [{ path: 'current', message: 'give grant_id or grant_token' }] });
      const ref = cur.$case === 'grantId' ? { grantId: cur.grantId } : { grantToken: cur.grantToken };
      return { grant: toWireGrant(await cp.grants.renew(p, ref, call.request.requestedTtlSeconds, metaOf(call))) };
    }),
  };

  const watchers = new Set<ServerWritableStream<WatchKeysRequest, WatchKeysResponse>>();
  const keySet = (): KeySet => ({
    version: Math.max(cp.grantKeys.version(), cp.nodeKeys.version()),
    issuedAt: timestampFromDate(new Date()),
    grantVerificationKeys: cp.grantKeys.publicKeys().map((k) => toWireJwk(k.jwk as Record<string, unknown>, false)),
    credentialDecryptionKeys: cp.nodeKeys.privateJwks().map((k) => toWireJwk(k as Record<string, unknown>, true)),
  });
  let lastVersion = 0;
  const broadcast = () => {
    const set = keySet();
    lastVersion = set.version;
    for (const w of watchers) w.write({ keySet: set });
  };
  const poll = setInterval(() => {
    Promise.all([cp.grantKeys.reload(), cp.nodeKeys.reload()])
      .then(() => {
        if (Math.max(cp.grantKeys.version(), cp.nodeKeys.version()) !== lastVersion) broadcast();
      })
      .catch((err: unknown) => logger.warn('Key rings could not be reloaded.', { err }));
  }, options.keyPollMs ?? 30_000);
  poll.unref();

  const nodes: NodeServiceServer = {
    registerNode: unary(logger, async (call) => {
      authenticateNode(call, call.request.node?.nodeId);
      const n = call.request.node;
      if (!n?.nodeId || !n.tunnelUrl) throw new AppError('VALIDATION_FAILED', { details: [{ path: 'node', message: 'node_id and tunnel_url are required' }] });
      await cp.nodes.register({ id: n.nodeId, version: n.version, tunnelUrl: n.tunnelUrl, protocols: n.protocols.map((p) => PROTOCOL_NAME[p] ?? '').filter(Boolean) });
      return { heartbeatIntervalSeconds: cp.nodes.heartbeatSeconds, serverTime: timestampFromDate(new Date()) };
    }),
    heartbeat: unary(logger, async (call) => {
      authenticateNode(call, call.request.node?.nodeId);
      const n = call.request.node;
      if (!n?.nodeId) throw new AppError('VALIDATION_FAILED', { details: [{ path: 'node', message: 'node_id is required' }] });
      const load = call.request.load;
      await cp.nodes.heartbeat(
        { id: n.nodeId, version: n.version, tunnelUrl: n.tunnelUrl, protocols: n.protocols.map((p) => PROTOCOL_NAME[p] ?? '').filter(Boolean) },
        { sessions: (load?.sessions ?? []).map((s) => ({ protocol: PROTOCOL_NAME[s.protocol], liveSessions: s.liveSessions })), auditSpoolDepth: load?.auditSpoolDepth ?? 0 },
        load?.draining ?? false,
      );
      return { heartbeatIntervalSeconds: cp.nodes.heartbeatSeconds, serverTime: timestampFromDate(new Date()) };
    }),
    deregisterNode: unary(logger, async (call) => {
      authenticateNode(call, call.request.nodeId);
      await cp.nodes.deregister(call.request.nodeId);
      return {};
    }),
    watchKeys: (call) => {
      try {
        authenticateNode(call, call.request.nodeId);
      } catch (err) {
        call.emit('error', toGrpcError(err));
        return;
      }
      watchers.add(call);
      call.on('cancelled', () => watchers.delete(call));
      call.on('close', () => watchers.delete(call));
      call.write({ keySet: keySet() });
    },
    ingestAudit: unary(logger, async (call) => {
      authenticateNode(call, call.request.nodeId);
      // The node this call is authenticated as: every event must be its own.
      const sender = call.request.nodeId;
      if (!sender) throw new AppError('VALIDATION_FAILED', { details: [{ path: 'node_id', message: 'the id of the sending node is required' }] });
      const acks: Array<{ eventId: string; status: AuditAckStatus; errorCode: string; errorMessage: string }> = [];
      const foreign: ForeignEvent[] = [];
      /** Stores one event and acknowledges it; a value that cannot be stored is rejected, anything else fails the call. */
      const store = async (eventId: string, input: () => AuditEventInput & { id: string }): Promise<void> => {
        try {
          const result = await cp.audit.ingest(input());
          acks.push({ eventId, status: result === 'stored' ? AuditAckStatus.STORED : AuditAckStatus.DUPLICATE, errorCode: '', errorMessage: '' });
        } catch (err) {
          if (err instanceof SyntaxError) {
            acks.push({ eventId, status: AuditAckStatus.REJECTED, errorCode: 'VALIDATION_FAILED', errorMessage: 'decision_json is not JSON' });
            return;
          }
          // Rejected, not failed: a failed call is retried by the node with the same batch, forever.
          if (isDataException(err)) {
            acks.push({ eventId, status: AuditAckStatus.REJECTED, errorCode: 'VALIDATION_FAILED', errorMessage: 'the event has a value that cannot be stored (time out of range, NUL character…)' });
            return;
          }
          throw err;
        }
      };
      for (const e of call.request.events) {
        if (!EVENT_ID.test(e.eventId) || !e.action) {
          acks.push({ eventId: e.eventId, status: AuditAckStatus.REJECTED, errorCode: 'VALIDATION_FAILED', errorMessage: 'event_id and action are required' });
          continue;
        }
        if (!isOwnEvent(sender, e.nodeId)) {
          foreign.push({ eventId: e.eventId, nodeId: e.nodeId });
          acks.push({ eventId: e.eventId, status: AuditAckStatus.REJECTED, errorCode: 'AUDIT_NODE_MISMATCH', errorMessage: foreignEventReason(sender, e.nodeId) });
          continue;
        }
        if (e.time && Number.isNaN(dateFromTimestamp(e.time).getTime())) {
          acks.push({ eventId: e.eventId, status: AuditAckStatus.REJECTED, errorCode: 'VALIDATION_FAILED', errorMessage: 'time is out of range' });
          continue;
        }
        await store(e.eventId, () => fromWireEvent(e));
      }
      // The same events as the node spooled them (its JSON, passed through): checked and stored alike.
      for (const json of call.request.spooledEvents) {
        const read = readSpooledEvent(json);
        if (!read.ok) {
          if (read.eventId) acks.push({ eventId: read.eventId, status: AuditAckStatus.REJECTED, errorCode: 'VALIDATION_FAILED', errorMessage: read.message });
          else logger.error('A node shipped an audit event without a readable id; it cannot be acknowledged.', { nodeId: sender, reason: read.message });
          continue;
        }
        if (!isOwnEvent(sender, read.nodeId)) {
          foreign.push({ eventId: read.event.id, nodeId: read.nodeId });
          acks.push({ eventId: read.event.id, status: AuditAckStatus.REJECTED, errorCode: 'AUDIT_NODE_MISMATCH', errorMessage: foreignEventReason(sender, read.nodeId) });
          continue;
        }
        await store(read.event.id, () => read.event);
      }
      await reportForeignEvents(cp.audit, logger, sender, foreign, metaOf(call));
      return { acks };
    }),
  };

  const server = new Server({ 'grpc.max_receive_message_length': 8 * 1024 * 1024 });
  server.addService(GrantServiceService, grants);
  server.addService(NodeServiceService, nodes);
  return {
    server,
    /** Pushes the current key set to every watching node (after a rotation here). */
    broadcastKeys: broadcast,
    listen: (host: string, port: number): Promise<number> =>
      new Promise((resolve, reject) => {
        server.bindAsync(`${host}:${port}`, serverCredentials(tls), (err, bound) => (err ? reject(err) : resolve(bound)));
      }),
    close: (): Promise<void> =>
      new Promise((resolve) => {
        clearInterval(poll);
        for (const w of watchers) w.end();
        watchers.clear();
        server.tryShutdown(() => resolve());
        setTimeout(() => server.forceShutdown(), 5_000).unref();
      }),
  };
};

export { status as grpcStatus };
