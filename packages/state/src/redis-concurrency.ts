import type { Redis } from 'ioredis';
import { createNullLogger, type Logger } from '@pa/kit';
import { systemClock, type Clock } from './clock';
import {
  LeaseHandle,
  LeaseTable,
  parseAcquire,
  type AcquireRequest,
  type AcquireResult,
  type Concurrency,
  type ConcurrencyScope,
  type LeaseBackend,
  type ParsedAcquire,
} from './concurrency';
import { stateKeys, type StateKeys } from './keys';
import { DEFAULT_COOLDOWN_MS, DEFAULT_TIMEOUT_MS } from './rate-limits';
import { RedisGate } from './redis-connection';

// Acquire or renew lease ARGV[3] atomically in the grant's and the user's sorted
// sets (member lease id, score expiry ms): drop expired members — a crashed
// node's leases go here — count, add. A member already present is not counted
// again, so the same script renews, and reinstates a lease that expired while
// its caps still have room. Returns 0 held, 1 grant cap full, 2 user cap full.
// ARGV: now, expiry, lease id, max per grant, max per user, key TTL ms.
const LEASE_LUA = `
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 1 end
if not redis.call('ZSCORE', KEYS[2], ARGV[3]) and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 2 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
local ttl = tonumber(ARGV[6])
for i = 1, 2 do
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 0
`;

interface LeaseCommands {
  paLease(grantKey: string, userKey: string, now: number, expiresAt: number, leaseId: string, maxPerGrant: number, maxPerUser: number, keyTtlMs: number): Promise<number>;
}

/** Options of {@link RedisConcurrency}. */
export interface RedisConcurrencyOptions {
  client: Redis;
  keyPrefix: string;
  /** Latency bound of `acquire` on Redis; past it local counting decides. Default 50 ms. */
  timeoutMs?: number;
  /** Bound on renew and release round trips (not on the data path). Default 1 s. */
  maintenanceTimeoutMs?: number;
  /** After a Redis failure or timeout, count locally for this long before trying Redis again. Default 1 s. */
  cooldownMs?: number;
  logger?: Logger;
  clock?: Clock;
}

const scopeOf = (code: number): ConcurrencyScope | null => (code === 0 ? null : code === 1 ? 'grant' : 'user');

/**
 * Concurrency caps shared by every node: per grant and per user, a sorted set
 * of live leases (`<prefix>cc:grant:<id>`, `<prefix>cc:user:<id>`; member lease
 * id, score expiry ms by the node's clock) changed only by one Lua script.
 * Holders renew every leaseMs/3, so a crashed node's leases expire after at
 * most `leaseMs` instead of leaking. Node clocks must agree to well within
 * `leaseMs` (NTP).
 *
 * When Redis is unreachable (or slower than `timeoutMs`) the node counts only
 * the leases it holds itself: caps then hold per node, not across nodes. Leases
 * granted that way are written to Redis by their next renewal once it is back.
 */
export class RedisConcurrency implements Concurrency, LeaseBackend {
  private readonly client: Redis;
  private readonly keys: StateKeys;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly gate: RedisGate;
  private readonly maintenanceTimeoutMs: number;
  private readonly table: LeaseTable;
  private readonly held = new Set<LeaseHandle>();

  constructor(options: RedisConcurrencyOptions) {
    if (!options.client) throw new TypeError('RedisConcurrency needs a Redis client.');
    this.client = options.client;
    this.keys = stateKeys(options.keyPrefix);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? createNullLogger();
    this.maintenanceTimeoutMs = options.maintenanceTimeoutMs ?? 1000;
    this.gate = new RedisGate(this.client, {
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      cooldownMs: options.cooldownMs ?? DEFAULT_COOLDOWN_MS,
      clock: this.clock,
      logger: this.logger,
      component: 'concurrency',
    });
    this.table = new LeaseTable(this.clock);
    if (!('paLease' in this.client)) this.client.defineCommand('paLease', { numberOfKeys: 2, lua: LEASE_LUA });
  }

  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    const parsed = parseAcquire(request);
    const lease = new LeaseHandle(parsed, this, this.clock, this.logger);
    let script: Promise<number> | undefined;
    if (this.gate.isUsable()) {
      try {
        const code = await this.gate.run('lease acquire', () => (script = this.runScript(lease.id, parsed, lease.expiresAt)));
        const refused = scopeOf(code);
        if (refused) return { ok: false, scope: refused, source: 'shared' };
        this.table.hold(lease.id, parsed.grantId, parsed.userId, lease.expiresAt);
        return this.grant(lease, 'shared');
      } catch {
        // Logged by the gate; count locally below.
      }
    }
    const refused = this.table.tryHold(lease.id, parsed, lease.expiresAt);
    if (refused) {
      // A timed-out script may still land in Redis: take the slot back if it does.
      void script?.then(
        (code) => (code === 0 ? this.removeShared(lease) : undefined),
        () => undefined,
      );
      return { ok: false, scope: refused, source: 'local' };
    }
    return this.grant(lease, 'local');
  }

  async renew(lease: LeaseHandle): Promise<boolean> {
    const expiresAt = lease.nextExpiry();
    if (this.gate.isUsable()) {
      try {
        const refused = scopeOf(await this.gate.run('lease renew', () => this.runScript(lease.id, lease.request, expiresAt), this.maintenanceTimeoutMs));
        if (refused) return false;
        this.table.hold(lease.id, lease.grantId, lease.userId, expiresAt);
        lease.expiresAt = expiresAt;
        return true;
      } catch {
        // Logged by the gate; keep the lease alive locally.
      }
    }
    this.table.hold(lease.id, lease.grantId, lease.userId, expiresAt);
    lease.expiresAt = expiresAt;
    return true;
  }

  async release(lease: LeaseHandle): Promise<void> {
    this.held.delete(lease);
    this.table.remove(lease.id, lease.grantId, lease.userId);
    await this.removeShared(lease);
  }

  async close(): Promise<void> {
    await Promise.all([...this.held].map((lease) => lease.release()));
  }

  private grant(lease: LeaseHandle, source: 'shared' | 'local'): AcquireResult {
    this.held.add(lease);
    lease.startRenewing();
    return { ok: true, lease, source };
  }

  private runScript(leaseId: string, request: ParsedAcquire, expiresAt: number): Promise<number> {
    const commands = this.client as unknown as LeaseCommands;
    return commands.paLease(
      this.keys.concurrencyGrant(request.grantId),
      this.keys.concurrencyUser(request.userId),
      this.clock(),
      expiresAt,
      leaseId,
      request.maxPerGrant,
      request.maxPerUser,
      request.leaseMs * 2 + 1000,
    );
  }

  private async removeShared(lease: LeaseHandle): Promise<void> {
    if (!this.gate.isUsable()) return; // the member expires with its score
    try {
      await this.gate.run(
        'lease release',
        (client) => client.multi().zrem(this.keys.concurrencyGrant(lease.grantId), lease.id).zrem(this.keys.concurrencyUser(lease.userId), lease.id).exec(),
        this.maintenanceTimeoutMs,
      );
    } catch (err) {
      this.logger.debug('Lease release not written to Redis; it will expire.', { leaseId: lease.id, err });
    }
  }
}
