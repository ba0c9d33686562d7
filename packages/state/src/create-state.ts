import type { Redis } from 'ioredis';
import { z } from 'zod';
import { createNullLogger, parseConfig, type Logger } from '@pa/kit';
import { systemClock, type Clock } from './clock';
import type { Concurrency } from './concurrency';
import { MemoryConcurrency } from './memory-concurrency';
import { MemoryRevocationStore } from './memory-revocation-store';
import { DEFAULT_COOLDOWN_MS, DEFAULT_RATE_LIMIT_WINDOWS, DEFAULT_TIMEOUT_MS, MemoryRateLimits, RedisRateLimits, type RateLimits, type RateLimitWindows } from './rate-limits';
import { RedisConcurrency } from './redis-concurrency';
import { openRedis, watchConnection, withTimeout } from './redis-connection';
import { REVOCATION_DEFAULTS, RedisRevocationStore } from './redis-revocation-store';
import type { RevocationStore } from './revocation-store';

/** Options of {@link createState}. */
export interface StateOptions {
  /** A Redis URL (the state opens and closes its own connection) or a client (left open on close). Absent: in-process state, single node only. */
  redis?: string | Redis;
  /** Prefix of every key and channel. Default `pa:`. */
  keyPrefix?: string;
  logger?: Logger;
  clock?: Clock;
  /** Latency bound of data-path Redis calls (rate limits, lease acquire). Default 50 ms. */
  timeoutMs?: number;
  /** After a Redis failure, decide locally for this long before trying again. Default 1 s. */
  cooldownMs?: number;
  /** Rate-limit windows; unspecified ones keep their defaults. */
  rateLimits?: Partial<RateLimitWindows>;
  /** Full revocation resync period. Default 10 s. */
  resyncIntervalMs?: number;
  /** How long revocation state is trusted after the last successful sync. Default 30 s. */
  maxStalenessMs?: number;
  /** Bound on one resync, subscribe or revoke. Default 5 s. */
  syncTimeoutMs?: number;
}

/** The shared state a service uses. Call `revocations.start()` before relying on `check`. */
export interface State {
  /** `redis` when shared through Redis, `memory` for the embedded single-node default. */
  readonly mode: 'redis' | 'memory';
  readonly revocations: RevocationStore;
  readonly rateLimits: RateLimits;
  readonly concurrency: Concurrency;
  /** Releases leases, stops timers and closes the connections the state opened. */
  close(): Promise<void>;
}

const windowSchema = z.object({ points: z.number().int().min(1), durationSeconds: z.number().int().min(1) });
const optionsSchema = z.object({
  keyPrefix: z.string().min(1).max(100).default('pa:'),
  timeoutMs: z.number().int().min(1).max(10_000).default(DEFAULT_TIMEOUT_MS),
  cooldownMs: z.number().int().min(0).max(600_000).default(DEFAULT_COOLDOWN_MS),
  rateLimits: z
    .object({ tunnelPerUser: windowSchema, tunnelPerConnection: windowSchema, requestPerUser: windowSchema, requestPerConnection: windowSchema })
    .partial()
    .default({}),
  resyncIntervalMs: z.number().int().min(10).default(REVOCATION_DEFAULTS.resyncIntervalMs),
  maxStalenessMs: z.number().int().min(1).default(REVOCATION_DEFAULTS.maxStalenessMs),
  syncTimeoutMs: z.number().int().min(1).default(REVOCATION_DEFAULTS.syncTimeoutMs),
});

/**
 * Builds the revocation store, rate limits and concurrency caps: Redis-backed
 * when `redis` is given (shared by every node), in-process otherwise. Rejects
 * invalid options with CONFIG_INVALID.
 */
export const createState = (options: StateOptions = {}): State => {
  const { redis, logger = createNullLogger(), clock = systemClock, ...rest } = options;
  const config = parseConfig(optionsSchema, rest);
  const windows: RateLimitWindows = { ...DEFAULT_RATE_LIMIT_WINDOWS, ...config.rateLimits };
  const log = logger.child({ component: 'state' });

  if (redis === undefined) {
    const concurrency = new MemoryConcurrency({ clock, logger: log });
    const revocations = new MemoryRevocationStore({ clock, logger: log });
    return {
      mode: 'memory',
      revocations,
      rateLimits: new MemoryRateLimits({ windows }),
      concurrency,
      close: async () => {
        await concurrency.close();
        await revocations.close();
      },
    };
  }

  const isOwned = typeof redis === 'string';
  const client = typeof redis === 'string' ? openRedis(redis) : redis;
  const unwatch = isOwned ? watchConnection(client, log, 'state') : () => undefined;
  const common = { client, keyPrefix: config.keyPrefix, logger: log, clock };
  const revocations = new RedisRevocationStore({ ...common, resyncIntervalMs: config.resyncIntervalMs, maxStalenessMs: config.maxStalenessMs, syncTimeoutMs: config.syncTimeoutMs });
  const rateLimits = new RedisRateLimits({ ...common, windows, timeoutMs: config.timeoutMs, cooldownMs: config.cooldownMs });
  const concurrency = new RedisConcurrency({ ...common, timeoutMs: config.timeoutMs, cooldownMs: config.cooldownMs });
  return {
    mode: 'redis',
    revocations,
    rateLimits,
    concurrency,
    close: async () => {
      await concurrency.close();
      await revocations.close();
      if (!isOwned) return;
      unwatch();
      client.on('error', () => undefined); // a failing quit must not surface as an unhandled error event
      try {
        await withTimeout(client.quit(), 1000, 'quit');
      } catch {
        // Unreachable or slow: drop the connection instead.
      }
      client.disconnect();
    },
  };
};
