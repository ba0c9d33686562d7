import { credentials, Metadata, status as GrpcStatus, type ChannelCredentials, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import {
  AuditOutcome,
  NodeServiceClient,
  Protocol,
  timestampFromDate,
  type AuditEvent as WireAuditEvent,
  type IngestAuditRequest,
  type KeySet,
  type NodeInfo,
  type NodeLoad,
  type WatchKeysResponse,
} from '@pa/contracts';
import { KeyStore } from '@pa/grants';
import { probeTls, TLS_FAILURE_TEXT, type Logger, type TlsFailureKind } from '@pa/kit';
import type { AuditEvent, AuditTransport, SpooledEvent } from './audit';
import type { ControlPlaneTls } from './tls';

const PROTOCOL_WIRE: Record<string, Protocol> = { postgres: Protocol.POSTGRES, http: Protocol.HTTP, tcp: Protocol.TCP };
const OUTCOME_WIRE: Record<string, AuditOutcome> = {
  allowed: AuditOutcome.ALLOWED,
  denied: AuditOutcome.DENIED,
  success: AuditOutcome.SUCCEEDED,
  failure: AuditOutcome.FAILED,
  error: AuditOutcome.FAILED,
};

/** Maps a spooled event to the wire form; details travel whole as JSON (with the exact outcome). */
export const toWireEvent = (e: AuditEvent): WireAuditEvent => ({
  eventId: e.id,
  time: timestampFromDate(new Date(e.time)),
  nodeId: e.nodeId,
  actorUserId: e.actor.id,
  actorUserName: e.actor.name,
  action: e.action,
  connectionId: e.connectionId,
  connectionName: e.connectionName ?? '',
  grantId: e.grantId,
  sessionId: e.sessionId,
  protocol: PROTOCOL_WIRE[e.protocol] ?? Protocol.UNSPECIFIED,
  outcome: OUTCOME_WIRE[e.outcome] ?? AuditOutcome.UNSPECIFIED,
  decisionJson: JSON.stringify({ ...e.details, outcome: e.outcome }),
  errorCode: typeof e.details.errorCode === 'string' ? e.details.errorCode : '',
  errorMessage: '',
  bytesUp: 0,
  bytesDown: 0,
  durationMs: 0,
  rows: 0,
});

export interface ControlPlaneClientOptions {
  address: string;
  token: string;
  node: () => NodeInfo;
  load: () => NodeLoad;
  logger: Logger;
  /** Called with every key set received (initial and rotations). */
  onKeys: (keys: KeyStore, set: KeySet) => void;
  /** TLS to the control plane; plaintext when absent. */
  tls?: ControlPlaneTls | null;
}

/** What the operator should do about each TLS failure talking to the control plane. */
const TLS_HINTS: Record<TlsFailureKind, string> = {
  untrusted: "set PA_CONTROL_PLANE_TLS_CA_FILE to the CA that signed the control plane's certificate",
  'name-mismatch': 'set PA_CONTROL_PLANE_TLS_SERVER_NAME to a name the certificate carries, or dial that name in PA_CONTROL_PLANE_GRPC',
  expired: "renew the control plane's certificate (or check this machine's clock)",
  'not-tls': 'the control plane serves plaintext on this port: give it PA_GRPC_TLS_CERT_FILE and PA_GRPC_TLS_KEY_FILE, or turn TLS off here (PA_CONTROL_PLANE_TLS=false)',
};

/** Refusals of this node by the control plane that need a person (token, client certificate). */
const NODE_AUTH_CODES = new Set(['AUTH_REQUIRED', 'AUTH_TOKEN_INVALID', 'AUTH_CLIENT_CERT_REQUIRED', 'AUTH_CLIENT_CERT_MISMATCH']);

const channelCredentials = (tls: ControlPlaneTls | null | undefined): ChannelCredentials =>
  tls ? credentials.createSsl(tls.ca, tls.keyPair?.key ?? null, tls.keyPair?.cert ?? null) : credentials.createInsecure();

const call = <T>(fn: (cb: (err: Error | null, res?: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as T))));

/**
 * The node's side of NodeService: registration and heartbeats, the key watch
 * (reconnecting with backoff, so rotations need no restart and a control-plane
 * outage only delays them), and the audit transport. Nothing here is on the
 * connection path: with the control plane down, unexpired grants keep working.
 */
export class ControlPlaneClient implements AuditTransport {
  private readonly client: NodeServiceClient;
  private readonly md = new Metadata();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private watch: ClientReadableStream<WatchKeysResponse> | null = null;
  private watchRetry: NodeJS.Timeout | null = null;
  private closed = false;
  private heartbeatSeconds = 10;
  private watchBackoffMs = 500;
  /** The last connection problem explained in the log (each is explained once until it clears). */
  private explained: string | null = null;
  connected = false;

  constructor(private readonly o: ControlPlaneClientOptions) {
    this.client = new NodeServiceClient(o.address, channelCredentials(o.tls), {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.max_receive_message_length': 8 * 1024 * 1024,
      ...(o.tls?.serverName ? { 'grpc.ssl_target_name_override': o.tls.serverName } : {}),
    });
    this.md.set('authorization', `Bearer ${o.token}`);
  }

  /**
   * Says, once per cause, why the control plane cannot be used when a person
   * must act: it refused this node (token, client certificate), or TLS failed.
   * grpc-js reports TLS failures only as text ("No connection established"),
   * so a TLS failure is found by one handshake of our own ({@link probeTls}).
   */
  private async explain(err: unknown): Promise<void> {
    const e = err as Partial<ServiceError>;
    const code = String(e.metadata?.get('pa-error-code')[0] ?? '');
    if (NODE_AUTH_CODES.has(code)) {
      if (this.explained === code) return;
      this.explained = code;
      this.o.logger.error('The control plane refused this node.', { address: this.o.address, code, reason: e.details ?? '' });
      return;
    }
    if (e.code !== GrpcStatus.UNAVAILABLE) return;
    const tls = this.o.tls;
    const probe = await probeTls({
      address: this.o.address,
      ...(tls?.ca ? { ca: tls.ca } : {}),
      ...(tls?.keyPair ? { cert: tls.keyPair.cert, key: tls.keyPair.key } : {}),
      ...(tls?.serverName ? { servername: tls.serverName } : {}),
      verify: Boolean(tls),
    });
    if (probe === null) return;
    if (probe === 'ok') {
      // Plaintext configured, but the control plane completes a TLS handshake.
      if (tls || this.explained === 'speaks-tls') return;
      this.explained = 'speaks-tls';
      this.o.logger.error('The control plane serves TLS, but this node dials it in plaintext.', { address: this.o.address, hint: 'set PA_CONTROL_PLANE_TLS=true (and PA_CONTROL_PLANE_TLS_CA_FILE for a private CA)' });
      return;
    }
    if (!tls || this.explained === probe.code) return;
    this.explained = probe.code;
    this.o.logger.error('TLS with the control plane failed.', { address: this.o.address, code: probe.code, reason: TLS_FAILURE_TEXT[probe.kind], hint: TLS_HINTS[probe.kind] });
  }

  start(): void {
    this.watchKeys();
    void this.register();
  }

  private async register(): Promise<void> {
    try {
      const res = await call<{ heartbeatIntervalSeconds: number }>((cb) => this.client.registerNode({ node: this.o.node() }, this.md, cb));
      this.heartbeatSeconds = res.heartbeatIntervalSeconds || 10;
      this.connected = true;
      this.explained = null;
      this.o.logger.info('Registered with the control plane.', { address: this.o.address, tls: Boolean(this.o.tls) });
    } catch (err) {
      this.connected = false;
      this.o.logger.warn('Control plane registration failed; retrying.', { err: (err as Error).message });
      await this.explain(err);
    }
    this.scheduleHeartbeat();
  }

  private scheduleHeartbeat(): void {
    if (this.closed) return;
    this.heartbeatTimer = setTimeout(() => void this.heartbeat(), this.heartbeatSeconds * 1000);
    this.heartbeatTimer.unref();
  }

  private async heartbeat(): Promise<void> {
    try {
      const res = await call<{ heartbeatIntervalSeconds: number }>((cb) => this.client.heartbeat({ node: this.o.node(), load: this.o.load() }, this.md, cb));
      this.heartbeatSeconds = res.heartbeatIntervalSeconds || this.heartbeatSeconds;
      this.connected = true;
      this.explained = null;
    } catch (err) {
      this.connected = false;
      this.o.logger.warn('Heartbeat to the control plane failed.', { err: (err as Error).message });
      await this.explain(err);
    }
    this.scheduleHeartbeat();
  }

  private watchKeys(): void {
    if (this.closed) return;
    const stream = this.client.watchKeys({ nodeId: this.o.node().nodeId }, this.md);
    this.watch = stream;
    stream.on('data', (msg: WatchKeysResponse) => {
      const set = msg.keySet;
      if (!set) return;
      this.watchBackoffMs = 500;
      KeyStore.fromJwks([...set.grantVerificationKeys, ...set.credentialDecryptionKeys]).then(
        (store) => this.o.onKeys(store, set),
        (err: unknown) => this.o.logger.error('Key set from the control plane is unusable.', { err }),
      );
    });
    const retry = (why: string) => {
      if (this.closed || this.watch !== stream) return;
      this.watch = null;
      this.o.logger.warn('Key watch ended; reconnecting.', { why, inMs: this.watchBackoffMs });
      this.watchRetry = setTimeout(() => this.watchKeys(), this.watchBackoffMs);
      this.watchRetry.unref();
      this.watchBackoffMs = Math.min(this.watchBackoffMs * 2, 15_000);
    };
    stream.on('error', (err: Error) => retry(err.message));
    stream.on('end', () => retry('stream ended'));
  }

  /** AuditTransport: ships a batch; acknowledged = stored, duplicate or rejected (rejected ones are logged). */
  send(events: AuditEvent[]): Promise<{ acked: string[] }> {
    return this.ingest({ nodeId: this.o.node().nodeId, events: events.map(toWireEvent), spooledEvents: [] });
  }

  /** AuditTransport: ships events as spooled, their JSON passed through untouched (the shipper's path). */
  sendSpooled(events: SpooledEvent[]): Promise<{ acked: string[] }> {
    return this.ingest({ nodeId: this.o.node().nodeId, events: [], spooledEvents: events.map((e) => e.json) });
  }

  private async ingest(request: IngestAuditRequest): Promise<{ acked: string[] }> {
    const res = await call<{ acks: Array<{ eventId: string; status: number; errorCode: string; errorMessage: string }> }>((cb) =>
      this.client.ingestAudit(request, this.md, { deadline: Date.now() + 15_000 }, cb),
    );
    for (const a of res.acks) {
      if (a.status === 30) this.o.logger.error('Control plane rejected an audit event.', { eventId: a.eventId, code: a.errorCode, reason: a.errorMessage });
    }
    return { acked: res.acks.map((a) => a.eventId) };
  }

  /** Withdraws this node's tunnel URL (drain). */
  async deregister(): Promise<void> {
    await call((cb) => this.client.deregisterNode({ nodeId: this.o.node().nodeId }, this.md, { deadline: Date.now() + 3_000 }, cb)).catch((err: unknown) => {
      this.o.logger.warn('Deregistration failed.', { err: (err as Error).message });
    });
  }

  close(): void {
    this.closed = true;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    if (this.watchRetry) clearTimeout(this.watchRetry);
    this.watch?.cancel();
    this.client.close();
  }
}
