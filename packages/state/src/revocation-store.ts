import { z } from 'zod';
import { AppError, zodProblems } from '@pa/kit';

/** What a revocation names: one grant, every grant of a user, or one login session. */
export type RevocationKind = 'grant' | 'user' | 'session';

/** Every revocation kind, in the order `check` consults them. */
export const REVOCATION_KINDS: readonly RevocationKind[] = ['grant', 'session', 'user'];

/** Longest TTL a revocation may carry (30 days); keeps the mirror bounded. */
export const MAX_REVOCATION_TTL_SECONDS = 30 * 24 * 3600;

/** Input of {@link RevocationStore.revoke}. */
export interface RevokeInput {
  kind: RevocationKind;
  id: string;
  /** Short, non-secret reason (`admin`, `logout`, `user-disabled`); logged and passed to listeners, never sent to clients. */
  reason: string;
  /**
   * How long the subject could still present something valid (for a grant,
   * until its `exp`; for a user or session, the longest grant lifetime). After
   * that the revocation is forgotten everywhere. Fractions allowed.
   */
  ttlSeconds: number;
}

/** The identities a new or live connection presents. */
export interface RevocationSubject {
  grantId: string;
  userId: string;
  sessionId?: string;
}

/**
 * Answer of {@link RevocationStore.check}: `unknown` means the local mirror is
 * older than its staleness bound and the subject is not known revoked — refuse
 * new connections (REVOCATION_STATUS_UNKNOWN), keep existing ones.
 */
export type RevocationCheck =
  | { state: 'ok' }
  | { state: 'revoked'; kind: RevocationKind; reason: string }
  | { state: 'unknown' };

/** One revocation as seen by a store. */
export interface Revocation {
  kind: RevocationKind;
  id: string;
  reason: string;
  /** When it was issued (ms since the epoch, issuer's clock). */
  at: number;
  /** When this store forgets it (ms, this store's clock). */
  expiresAt: number;
}

/** Called once for every revocation a store learns of (revoke, pub/sub message or resync). */
export type RevocationListener = (revocation: Revocation) => void;

/** What {@link RevocationStore.health} reports. */
export interface RevocationHealth {
  /** Whether the store currently receives revocations as they happen. */
  connected: boolean;
  /** Start of the last successful full sync (ms), or null before the first. */
  lastSyncAt: number | null;
  /** Whether the mirror is past its staleness bound (`check` then answers `unknown` for subjects not known revoked). */
  stale: boolean;
}

/**
 * Revocations of grants, users and sessions. The control plane calls
 * `revoke`; data-plane nodes call `check` when a connection is opened (it is
 * synchronous: answered from a local mirror, never waiting for Redis) and
 * close live sessions from `onRevoked`.
 */
export interface RevocationStore {
  /** Records a revocation and announces it to every node. Rejects with VALIDATION_FAILED or DEPENDENCY_UNAVAILABLE. */
  revoke(input: RevokeInput): Promise<void>;
  /** Whether `subject` is revoked, from the local mirror. */
  check(subject: RevocationSubject): RevocationCheck;
  /** Registers `listener` for every revocation seen from now on; returns a function that removes it. */
  onRevoked(listener: RevocationListener): () => void;
  /** Connects and performs the first sync; resolves even when Redis is unreachable (the store keeps trying). */
  start(): Promise<void>;
  /** Stops timers and closes connections the store opened. */
  close(): Promise<void>;
  health(): RevocationHealth;
}

const revokeInputSchema = z.object({
  kind: z.enum(['grant', 'user', 'session']),
  id: z.string().min(1).max(256),
  reason: z.string().min(1).max(200),
  ttlSeconds: z.number().positive().max(MAX_REVOCATION_TTL_SECONDS),
});

/** Validates a {@link RevokeInput}; throws VALIDATION_FAILED listing every problem. */
export const parseRevokeInput = (input: RevokeInput): RevokeInput => {
  const parsed = revokeInputSchema.safeParse(input);
  if (!parsed.success) throw new AppError('VALIDATION_FAILED', { details: zodProblems(parsed.error) });
  return parsed.data;
};
