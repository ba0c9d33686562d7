import { credentials, Metadata, type ClientReadableStream } from '@grpc/grpc-js';
import {
  AuditOutcome,
  NodeServiceClient,
  Protocol,
  timestampFromDate,
  type AuditEvent as WireAuditEvent,
  type KeySet,
  type NodeInfo,
  type NodeLoad,
  type WatchKeysResponse,
} from '@pa/contracts';
import { KeyStore } from '@pa/grants';
import type { Logger } from '@pa/kit';
import type { AuditEvent, AuditTransport } from './audit';

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
}

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
  connected = false;

  constructor(private readonly o: ControlPlaneClientOptions) {
    this.client = new NodeServiceClient(o.address, credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.max_receive_message_length': 8 * 1024 * 1024,
    });
    this.md.set('authorization', `Bearer ${o.token}`);
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
      this.o.logger.info('Registered with the control plane.', { address: this.o.address });
    } catch (err) {
      this.connected = false;
      this.o.logger.warn('Control plane registration failed; retrying.', { err: (err as Error).message });
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
    } catch (err) {
      this.connected = false;
      this.o.logger.warn('Heartbeat to the control plane failed.', { err: (err as Error).message });
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
  async send(events: AuditEvent[]): Promise<{ acked: string[] }> {
    const res = await call<{ acks: Array<{ eventId: string; status: number; errorCode: string; errorMessage: string }> }>((cb) =>
      this.client.ingestAudit({ nodeId: this.o.node().nodeId, events: events.map(toWireEvent) }, this.md, { deadline: Date.now() + 15_000 }, cb),
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
