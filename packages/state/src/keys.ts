import type { RevocationKind } from './revocation-store';

/** Escapes Redis glob metacharacters so a key prefix can start a SCAN MATCH pattern. */
const escapeGlob = (value: string): string => value.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

/**
 * The Redis key layout, in one place (the README repeats it). Every key and
 * channel starts with the configured prefix (for example `pa:`).
 */
export interface StateKeys {
  /** `<prefix>rev:<kind>:<id>` — a revocation; value JSON `{reason, at}`, TTL = how long the subject could still present something valid. */
  revocation(kind: RevocationKind, id: string): string;
  /** SCAN MATCH pattern for every revocation key. */
  readonly revocationPattern: string;
  /** Start of every revocation key (`<prefix>rev:`). */
  readonly revocationKeyStart: string;
  /** Pub/sub channel on which revocations are announced (`<prefix>revocations`). */
  readonly revocationChannel: string;
  /** Prefix given to rate-limiter-flexible, which appends `:<subject>`: `<prefix>rl:<bucket>`. */
  rateLimit(bucket: string): string;
  /** Sorted set of live leases of one grant (`<prefix>cc:grant:<grantId>`; member lease id, score expiry ms). */
  concurrencyGrant(grantId: string): string;
  /** Sorted set of live leases of one user (`<prefix>cc:user:<userId>`). */
  concurrencyUser(userId: string): string;
}

/** The key layout under `prefix`. */
export const stateKeys = (prefix: string): StateKeys => ({
  revocation: (kind, id) => `${prefix}rev:${kind}:${id}`,
  revocationPattern: `${escapeGlob(prefix)}rev:*`,
  revocationKeyStart: `${prefix}rev:`,
  revocationChannel: `${prefix}revocations`,
  rateLimit: (bucket) => `${prefix}rl:${bucket}`,
  concurrencyGrant: (grantId) => `${prefix}cc:grant:${grantId}`,
  concurrencyUser: (userId) => `${prefix}cc:user:${userId}`,
});
