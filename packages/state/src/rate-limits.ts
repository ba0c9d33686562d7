import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { createNullLogger, type Logger } from '@pa/kit';
import { systemClock, type Clock } from './clock';
import { stateKeys } from './keys';
import { RedisGate } from './redis-connection';

/** A fixed window: at most `points` consumptions per `durationSeconds`. */
export interface RateLimitWindow {
  points: number;
  /** Whole seconds (rate-limiter-flexible's resolution in Redis). */
  durationSeconds: number;
}

/** The four windows: new tunnels and requests/statements, each per user and per connection (target). */
export interface RateLimitWindows {
  tunnelPerUser: RateLimitWindow;
  tunnelPerConnection: RateLimitWindow;
  requestPerUser: RateLimitWindow;
  requestPerConnection: RateLimitWindow;
}

/** Defaults: 60 tunnels a minute per user, 600 per connection; 200 requests a second per user, 2000 per connection. */
export const DEFAULT_RATE_LIMIT_WINDOWS: Readonly<RateLimitWindows> = Object.freeze({
  tunnelPerUser: { points: 60, durationSeconds: 60 },
  tunnelPerConnection: { points: 600, durationSeconds: 60 },
  requestPerUser: { points: 200, durationSeconds: 1 },
  requestPerConnection: { points: 2000, durationSeconds: 1 },
});

/** Which bucket refused. */
export type RateLimitScope = 'user' | 'connection';

/** Where a decision was taken: the shared Redis buckets, or this node's fallback limiter. */
export type DecisionSource = 'shared' | 'local';

/** Answer of a consume call. */
export type RateLimitDecision =
  | { allowed: true; source: DecisionSource }
  | { allowed: false; retryAfterMs: number; scope: RateLimitScope; source: DecisionSource };

/** Rate limits checked by the data plane: `consumeTunnel` when a tunnel opens, `consumeRequest` per HTTP request or SQL statement. */
export interface RateLimits {
  /** Counts one new tunnel against the user's and the connection's tunnel windows. */
  consumeTunnel(userId: string, connectionId: string): Promise<RateLimitDecision>;
  /** Counts one request or statement against the user's and the connection's request windows. */
  consumeRequest(userId: string, connectionId: string): Promise<RateLimitDecision>;
}

type BucketName = keyof RateLimitWindows;
const BUCKETS: Record<BucketName, { key: string; scope: RateLimitScope }> = {
  tunnelPerUser: { key: 'tunnel:user', scope: 'user' },
  tunnelPerConnection: { key: 'tunnel:conn', scope: 'connection' },
  requestPerUser: { key: 'req:user', scope: 'user' },
  requestPerConnection: { key: 'req:conn', scope: 'connection' },
};

interface Bucket {
  scope: RateLimitScope;
  shared: RateLimiterRedis | null;
  local: RateLimiterMemory;
  /** Points taken from Redis at a time for request windows (1: every request asks Redis). */
  leaseSize: number;
}

/**
 * Points of a shared request window held by this node: taken from Redis
 * `leaseSize` at a time and spent locally until the window ends.
 */
interface Lease {
  tokens: number;
  /** When the Redis window these points belong to ends (ms, node clock). */
  until: number;
  /** A lease request in flight (callers that find no token wait for it). */
  pending: Promise<void> | null;
  /** Redis refused the last lease request: ask for single points until the window ends. */
  exhausted: boolean;
}

/**
 * Request windows of at least this many points are leased (1/LEASE_FRACTION
 * of the window at a time); smaller ones are counted in Redis point by point.
 */
const MIN_LEASED_POINTS = 40;
const LEASE_FRACTION = 20;
/** Leases held before ended ones are swept. */
const MAX_LEASES = 10_000;

type Outcome = { ok: true } | { ok: false; retryAfterMs: number };

const outcomeOf = (res: RateLimiterRes, allowed: boolean): Outcome =>
  allowed ? { ok: true } : { ok: false, retryAfterMs: Math.max(1, res.msBeforeNext) };

/** Consumes one point from an in-process limiter. */
const consumeLocal = async (limiter: RateLimiterMemory, key: string): Promise<Outcome> => {
  try {
    return outcomeOf(await limiter.consume(key), true);
  } catch (res) {
    if (res instanceof RateLimiterRes) return outcomeOf(res, false);
    throw res;
  }
};

/** Options of {@link RedisRateLimits}. */
export interface RedisRateLimitsOptions {
  client: Redis;
  keyPrefix: string;
  windows?: Partial<RateLimitWindows>;
  /** Latency bound: past it the local limiter decides. Default 50 ms. */
  timeoutMs?: number;
  /** After a Redis failure or timeout, decide locally for this long before trying Redis again. Default 1 s. */
  cooldownMs?: number;
  logger?: Logger;
  clock?: Clock;
}

/** Default latency bound of a shared-state call on the data path. */
export const DEFAULT_TIMEOUT_MS = 50;
/** Default time spent deciding locally after a Redis failure. */
export const DEFAULT_COOLDOWN_MS = 1000;

const buildBuckets = (windows: RateLimitWindows, shared: ((name: BucketName, w: RateLimitWindow) => RateLimiterRedis) | null): Record<BucketName, Bucket> => {
  const make = (name: BucketName): Bucket => {
    const w = windows[name];
    const leased = (name === 'requestPerUser' || name === 'requestPerConnection') && w.points >= MIN_LEASED_POINTS;
    return {
      scope: BUCKETS[name].scope,
      shared: shared ? shared(name, w) : null,
      local: new RateLimiterMemory({ keyPrefix: BUCKETS[name].key, points: w.points, duration: w.durationSeconds }),
      leaseSize: leased ? Math.floor(w.points / LEASE_FRACTION) : 1,
    };
  };
  return { tunnelPerUser: make('tunnelPerUser'), tunnelPerConnection: make('tunnelPerConnection'), requestPerUser: make('requestPerUser'), requestPerConnection: make('requestPerConnection') };
};

const decide = (user: Outcome, connection: Outcome, source: DecisionSource): RateLimitDecision => {
  // Both windows must have room; the caller waits for the later of the two.
  const refusals: Array<{ retryAfterMs: number; scope: RateLimitScope }> = [];
  if (!user.ok) refusals.push({ retryAfterMs: user.retryAfterMs, scope: 'user' });
  if (!connection.ok) refusals.push({ retryAfterMs: connection.retryAfterMs, scope: 'connection' });
  const worst = refusals.reduce<(typeof refusals)[number] | undefined>((a, b) => (a && a.retryAfterMs >= b.retryAfterMs ? a : b), undefined);
  return worst ? { allowed: false, ...worst, source } : { allowed: true, source };
};

/**
 * Rate limits in this process only (rate-limiter-flexible `RateLimiterMemory`):
 * the embedded single-node default.
 */
export class MemoryRateLimits implements RateLimits {
  private readonly buckets: Record<BucketName, Bucket>;

  constructor(options: { windows?: Partial<RateLimitWindows> } = {}) {
    this.buckets = buildBuckets({ ...DEFAULT_RATE_LIMIT_WINDOWS, ...options.windows }, null);
  }

  async consumeTunnel(userId: string, connectionId: string): Promise<RateLimitDecision> {
    const [u, c] = await Promise.all([consumeLocal(this.buckets.tunnelPerUser.local, userId), consumeLocal(this.buckets.tunnelPerConnection.local, connectionId)]);
    return decide(u, c, 'local');
  }

  async consumeRequest(userId: string, connectionId: string): Promise<RateLimitDecision> {
    const [u, c] = await Promise.all([consumeLocal(this.buckets.requestPerUser.local, userId), consumeLocal(this.buckets.requestPerConnection.local, connectionId)]);
    return decide(u, c, 'local');
  }
}

/**
 * Rate limits shared by every node through Redis (rate-limiter-flexible
 * `RateLimiterRedis`, keys `<prefix>rl:<bucket>:<subject>`), insured by a
 * per-node `RateLimiterMemory` with the same windows. The local limiter
 * decides when Redis is not connected, fails, or does not answer within
 * `timeoutMs` — so a consume call never waits on Redis longer than that — and
 * for `cooldownMs` after such a failure. While it decides, each node allows
 * the full window on its own: the cluster-wide allowance is briefly N times
 * the configured one, which is the accepted price of staying up.
 */
export class RedisRateLimits implements RateLimits {
  private readonly buckets: Record<BucketName, Bucket>;
  private readonly gate: RedisGate;
  private readonly clock: Clock;
  private readonly leases = new Map<string, Lease>();

  constructor(options: RedisRateLimitsOptions) {
    if (!options.client) throw new TypeError('RedisRateLimits needs a Redis client.');
    const keys = stateKeys(options.keyPrefix);
    this.clock = options.clock ?? systemClock;
    this.gate = new RedisGate(options.client, {
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      cooldownMs: options.cooldownMs ?? DEFAULT_COOLDOWN_MS,
      clock: options.clock ?? systemClock,
      logger: options.logger ?? createNullLogger(),
      component: 'rate-limits',
    });
    // No `insuranceLimiter` on the Redis limiters: the fallback is applied here,
    // once, whether Redis failed or merely was slow (the library would consume
    // the insurance a second time when a timed-out call fails later).
    this.buckets = buildBuckets({ ...DEFAULT_RATE_LIMIT_WINDOWS, ...options.windows }, (name, w) =>
      new RateLimiterRedis({ storeClient: options.client, keyPrefix: keys.rateLimit(BUCKETS[name].key), points: w.points, duration: w.durationSeconds }),
    );
  }

  consumeTunnel(userId: string, connectionId: string): Promise<RateLimitDecision> {
    return this.consumePair(this.buckets.tunnelPerUser, userId, this.buckets.tunnelPerConnection, connectionId);
  }

  consumeRequest(userId: string, connectionId: string): Promise<RateLimitDecision> {
    return this.consumePair(this.buckets.requestPerUser, userId, this.buckets.requestPerConnection, connectionId);
  }

  private async consumePair(userBucket: Bucket, userId: string, connBucket: Bucket, connectionId: string): Promise<RateLimitDecision> {
    const [u, c] = await Promise.all([this.consume(userBucket, userId), this.consume(connBucket, connectionId)]);
    return decide(u.outcome, c.outcome, u.source === 'shared' && c.source === 'shared' ? 'shared' : 'local');
  }

  private async consume(bucket: Bucket, key: string): Promise<{ outcome: Outcome; source: DecisionSource }> {
    const shared = bucket.shared;
    if (shared && this.gate.isUsable()) {
      try {
        if (bucket.leaseSize > 1) {
          const outcome = await this.consumeLeased(bucket, shared, key);
          if (outcome !== null) return { outcome, source: 'shared' };
        }
        return { outcome: await this.consumeShared(shared, key, 1), source: 'shared' };
      } catch {
        // Logged by the gate (once per outage); the local limiter decides.
      }
    }
    return { outcome: await consumeLocal(bucket.local, key), source: 'local' };
  }

  /** Consumes `points` in Redis, within the gate's latency bound. Rejects when Redis fails or is slow. */
  private consumeShared(shared: RateLimiterRedis, key: string, points: number): Promise<Outcome & { msBeforeNext?: number }> {
    return this.gate.run('rate-limit consume', async () => {
      try {
        const res = await shared.consume(key, points);
        return { ok: true as const, msBeforeNext: res.msBeforeNext };
      } catch (res) {
        if (res instanceof RateLimiterRes) return outcomeOf(res, false);
        throw res;
      }
    });
  }

  /**
   * A request from a leased window: one of the node's points when it holds
   * some (no Redis round trip), with the next lease asked for in the
   * background when a quarter is left. Null when the lease is exhausted:
   * the caller then asks Redis for a single point, so a window is never
   * overrun near its end. A lease takes `leaseSize` points at once, so other
   * nodes may see a window fill up to `leaseSize` points early per node
   * (points leased and not used before the window ends are lost): the window
   * is never exceeded, and a node only waits for Redis once per lease.
   */
  private async consumeLeased(bucket: Bucket, shared: RateLimiterRedis, key: string): Promise<Outcome | null> {
    const id = `${bucket.scope}:${bucket.leaseSize}:${key}`;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const now = this.clock();
      let lease = this.leases.get(id);
      if (lease !== undefined && now >= lease.until) {
        // Points of a window that has ended are void.
        lease.tokens = 0;
        lease.exhausted = false;
        if (lease.pending === null) {
          this.leases.delete(id);
          lease = undefined;
        }
      }
      if (lease === undefined && this.leases.size >= MAX_LEASES) this.sweep(now);
      if (lease !== undefined && lease.tokens > 0) {
        lease.tokens -= 1;
        if (lease.tokens <= bucket.leaseSize / 4 && lease.pending === null && !lease.exhausted) lease.pending = this.renew(id, lease, shared, key, bucket.leaseSize);
        return { ok: true };
      }
      if (lease?.exhausted === true) return null;
      if (lease === undefined) {
        lease = { tokens: 0, until: now, pending: null, exhausted: false };
        this.leases.set(id, lease);
      }
      lease.pending ??= this.renew(id, lease, shared, key, bucket.leaseSize);
      await lease.pending;
    }
    return null;
  }

  /** Forgets leases whose window has ended (the map holds one per user and per connection seen). */
  private sweep(now: number): void {
    for (const [id, lease] of this.leases) if (now >= lease.until && lease.pending === null) this.leases.delete(id);
  }

  /** Asks Redis for `size` more points of the window; failures leave the lease empty (callers fall back). */
  private renew(id: string, lease: Lease, shared: RateLimiterRedis, key: string, size: number): Promise<void> {
    const done = this.consumeShared(shared, key, size).then(
      (r) => {
        const now = this.clock();
        if (r.ok) {
          lease.tokens = (now < lease.until ? lease.tokens : 0) + size;
          lease.until = now + (r.msBeforeNext ?? 0);
        } else {
          lease.exhausted = true;
          lease.until = now + r.retryAfterMs;
        }
      },
      () => {
        // Redis failed or was slow (logged by the gate): forget the lease; the next request decides as the gate says.
        this.leases.delete(id);
      },
    );
    return done.finally(() => {
      lease.pending = null;
    });
  }
}
