import { AppError } from '@pa/kit';
import type { AcquireResult } from './concurrency';
import type { RateLimitDecision } from './rate-limits';
import type { RevocationCheck } from './revocation-store';

/**
 * The error to refuse a connection with, or null when `check` allows it:
 * AUTH_SESSION_REVOKED for a revoked session, GRANT_REVOKED for a revoked
 * grant or user, REVOCATION_STATUS_UNKNOWN when the state is too stale to
 * tell. The revocation reason stays internal; meta carries only the kind.
 */
export const revocationError = (check: RevocationCheck): AppError | null => {
  switch (check.state) {
    case 'ok':
      return null;
    case 'unknown':
      return new AppError('REVOCATION_STATUS_UNKNOWN');
    case 'revoked':
      return new AppError(check.kind === 'session' ? 'AUTH_SESSION_REVOKED' : 'GRANT_REVOKED', { meta: { revoked: check.kind } });
  }
};

/** RATE_LIMITED with `retryAfterSeconds` and `scope` in meta, or null when allowed. */
export const rateLimitError = (decision: RateLimitDecision): AppError | null =>
  decision.allowed ? null : new AppError('RATE_LIMITED', { meta: { retryAfterSeconds: Math.max(1, Math.ceil(decision.retryAfterMs / 1000)), scope: decision.scope } });

/** CONCURRENCY_LIMITED with the refusing `scope` in meta, or null when a lease was granted. */
export const concurrencyError = (result: AcquireResult): AppError | null =>
  result.ok ? null : new AppError('CONCURRENCY_LIMITED', { meta: { scope: result.scope } });
