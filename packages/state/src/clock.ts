/**
 * Milliseconds since the Unix epoch. Every expiry in this package (revocation
 * TTLs in the mirror, staleness, lease expiries, the Redis back-off window) is
 * measured with an injected clock so tests can move time instead of sleeping.
 */
export type Clock = () => number;

/** The wall clock. */
export const systemClock: Clock = () => Date.now();
