export { systemClock, type Clock } from './clock';
export { stateKeys, type StateKeys } from './keys';
export {
  REVOCATION_KINDS,
  MAX_REVOCATION_TTL_SECONDS,
  type Revocation,
  type RevocationCheck,
  type RevocationHealth,
  type RevocationKind,
  type RevocationListener,
  type RevocationStore,
  type RevocationSubject,
  type RevokeInput,
} from './revocation-store';
export { MemoryRevocationStore, type MemoryRevocationStoreOptions } from './memory-revocation-store';
export { RedisRevocationStore, REVOCATION_DEFAULTS, type RedisRevocationStoreOptions } from './redis-revocation-store';
export {
  MemoryRateLimits,
  RedisRateLimits,
  DEFAULT_RATE_LIMIT_WINDOWS,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_COOLDOWN_MS,
  type DecisionSource,
  type RateLimitDecision,
  type RateLimits,
  type RateLimitScope,
  type RateLimitWindow,
  type RateLimitWindows,
  type RedisRateLimitsOptions,
} from './rate-limits';
export { DEFAULT_LEASE_MS, type AcquireRequest, type AcquireResult, type Concurrency, type ConcurrencyScope, type Lease } from './concurrency';
export { MemoryConcurrency, type MemoryConcurrencyOptions } from './memory-concurrency';
export { RedisConcurrency, type RedisConcurrencyOptions } from './redis-concurrency';
export { createState, type State, type StateOptions } from './create-state';
export { revocationError, rateLimitError, concurrencyError } from './errors';
