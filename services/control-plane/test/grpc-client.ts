import { Metadata, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import {
  DeregisterNodeRequest,
  HeartbeatRequest,
  IngestAuditRequest,
  IssueGrantRequest,
  Protocol,
  RegisterNodeRequest,
  RenewGrantRequest,
  type DeregisterNodeResponse,
  type Grant,
  type HeartbeatResponse,
  type IngestAuditResponse,
  type IssueGrantResponse,
  type KeySet,
  type RegisterNodeResponse,
  type RenewGrantResponse,
  type WatchKeysResponse,
} from '@pa/contracts';
import type { RevocationCheck, RevocationStore, RevocationSubject } from '@pa/state';
import type { GrpcHarness } from './harness';

/** Client-side helpers for the control plane's gRPC API in tests. */

/** Call metadata carrying `authorization: Bearer <token>` (none when token is null or undefined). */
export const bearerMd = (token?: string | null): Metadata => {
  const md = new Metadata();
  if (token !== undefined && token !== null) md.set('authorization', `Bearer ${token}`);
  return md;
};

/** Turns a callback-style unary call into a promise. */
export const unary = <Res>(start: (cb: (err: ServiceError | null, res: Res) => void) => unknown): Promise<Res> =>
  new Promise((resolve, reject) => {
    start((err, res) => (err ? reject(err) : resolve(res)));
  });

/** Awaits a call that must fail; returns the error with its `pa-error-code`. */
export const grpcFailure = async (p: Promise<unknown>): Promise<{ code: number; details: string; errorCode: string; err: ServiceError }> => {
  try {
    await p;
  } catch (e) {
    const err = e as ServiceError;
    if (typeof err.code !== 'number' || !err.metadata) throw e;
    return { code: err.code, details: err.details, errorCode: String(err.metadata.get('pa-error-code')[0] ?? ''), err };
  }
  throw new Error('expected the gRPC call to fail, but it succeeded');
};

/** GrantService as a user with `token` (no authorization metadata when undefined). */
export const grantClient = (g: GrpcHarness, token?: string) => ({
  issue: async (connectionName: string, requestedTtlSeconds = 0): Promise<Grant> => {
    const res = await unary<IssueGrantResponse>((cb) => g.grants.issueGrant(IssueGrantRequest.fromPartial({ connectionName, requestedTtlSeconds }), bearerMd(token), cb));
    if (!res.grant) throw new Error('IssueGrant returned no grant');
    return res.grant;
  },
  /** The raw IssueGrant response (to inspect exactly what went over the wire). */
  issueRaw: (connectionName: string, requestedTtlSeconds = 0): Promise<IssueGrantResponse> =>
    unary<IssueGrantResponse>((cb) => g.grants.issueGrant(IssueGrantRequest.fromPartial({ connectionName, requestedTtlSeconds }), bearerMd(token), cb)),
  renew: async (current: { grantId: string } | { grantToken: string }, requestedTtlSeconds = 0): Promise<Grant> => {
    const req = RenewGrantRequest.fromPartial({
      current: 'grantId' in current ? { $case: 'grantId', grantId: current.grantId } : { $case: 'grantToken', grantToken: current.grantToken },
      requestedTtlSeconds,
    });
    const res = await unary<RenewGrantResponse>((cb) => g.grants.renewGrant(req, bearerMd(token), cb));
    if (!res.grant) throw new Error('RenewGrant returned no grant');
    return res.grant;
  },
});

export interface NodeSpec {
  nodeId: string;
  tunnelUrl: string;
  version?: string;
  protocols?: Protocol[];
}

const nodeInfo = (n: NodeSpec) => ({ nodeId: n.nodeId, tunnelUrl: n.tunnelUrl, version: n.version ?? '1.0.0-test', protocols: n.protocols ?? [Protocol.POSTGRES] });

/** NodeService presenting `token` (the right node token when undefined; no authorization at all when null). */
export const nodeClient = (g: GrpcHarness, presented?: string | null) => {
  const token = presented === undefined ? g.nodeToken : presented;
  return {
  register: (n: NodeSpec) => unary<RegisterNodeResponse>((cb) => g.nodes.registerNode(RegisterNodeRequest.fromPartial({ node: nodeInfo(n) }), bearerMd(token), cb)),
  heartbeat: (n: NodeSpec, load: { sessions?: Array<{ protocol: Protocol; liveSessions: number }>; auditSpoolDepth?: number; draining?: boolean } = {}) =>
    unary<HeartbeatResponse>((cb) => g.nodes.heartbeat(HeartbeatRequest.fromPartial({ node: nodeInfo(n), load }), bearerMd(token), cb)),
  deregister: (nodeId: string) => unary<DeregisterNodeResponse>((cb) => g.nodes.deregisterNode(DeregisterNodeRequest.fromPartial({ nodeId }), bearerMd(token), cb)),
  ingest: (req: Parameters<typeof IngestAuditRequest.fromPartial>[0]) =>
    unary<IngestAuditResponse>((cb) => g.nodes.ingestAudit(IngestAuditRequest.fromPartial(req), bearerMd(token), cb)),
  watch: (nodeId: string) => new StreamReader<WatchKeysResponse>(g.nodes.watchKeys({ nodeId }, bearerMd(token))),
  };
};

/**
 * Reads a server stream message by message: `next()` resolves with the next
 * message, or rejects with the stream's error, or after a bound (never hangs).
 */
export class StreamReader<T> {
  private readonly queue: T[] = [];
  private readonly waiters: Array<{ resolve: (v: T) => void; reject: (e: unknown) => void }> = [];
  private failure: Error | null = null;

  constructor(readonly stream: ClientReadableStream<T>) {
    stream.on('data', (msg: T) => {
      const w = this.waiters.shift();
      if (w) w.resolve(msg);
      else this.queue.push(msg);
    });
    const fail = (err: Error) => {
      this.failure ??= err;
      for (const w of this.waiters.splice(0)) w.reject(err);
    };
    stream.on('error', fail);
    stream.on('end', () => fail(new Error('stream ended')));
  }

  next(boundMs = 5_000): Promise<T> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no stream message within ${boundMs} ms`));
      }, boundMs);
      const waiter = {
        resolve: (v: T) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Messages received but not read yet. */
  pending(): number {
    return this.queue.length;
  }

  cancel(): void {
    this.stream.on('error', () => undefined);
    this.stream.cancel();
  }
}

/** The next KeySet from a WatchKeys stream. */
export const nextKeySet = async (r: StreamReader<WatchKeysResponse>): Promise<KeySet> => {
  const msg = await r.next();
  if (!msg.keySet) throw new Error('WatchKeys message without a key set');
  return msg.keySet;
};

/** Reads key sets until one satisfies `pred` (sets pushed meanwhile are skipped); each read is bounded. */
export const nextKeySetWhere = async (r: StreamReader<WatchKeysResponse>, pred: (set: KeySet) => boolean, reads = 200): Promise<KeySet> => {
  for (let i = 0; i < reads; i += 1) {
    const set = await nextKeySet(r);
    if (pred(set)) return set;
  }
  throw new Error(`no matching key set in ${reads} messages`);
};

/**
 * Resolves once `store` reports `subject` revoked: checked now, then again on
 * every revocation the store learns of; rejects after a bound (no polling, no sleep).
 */
export const revokedIn = (store: RevocationStore, subject: RevocationSubject, boundMs = 5_000): Promise<Extract<RevocationCheck, { state: 'revoked' }>> =>
  new Promise((resolve, reject) => {
    const now = store.check(subject);
    if (now.state === 'revoked') {
      resolve(now);
      return;
    }
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${JSON.stringify(subject)} not revoked within ${boundMs} ms (state ${store.check(subject).state})`));
    }, boundMs);
    const off = store.onRevoked(() => {
      const c = store.check(subject);
      if (c.state !== 'revoked') return;
      off();
      clearTimeout(timer);
      resolve(c);
    });
  });
