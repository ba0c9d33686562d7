import { ERROR_CODES } from '@pa/kit';
import { concurrencyError, rateLimitError, revocationError } from './errors';

describe('edge errors for state decisions', () => {
  it.each([
    [{ state: 'ok' } as const, null],
    [{ state: 'unknown' } as const, 'REVOCATION_STATUS_UNKNOWN'],
    [{ state: 'revoked', kind: 'grant', reason: 'admin' } as const, 'GRANT_REVOKED'],
    [{ state: 'revoked', kind: 'user', reason: 'user-disabled' } as const, 'GRANT_REVOKED'],
    [{ state: 'revoked', kind: 'session', reason: 'logout' } as const, 'AUTH_SESSION_REVOKED'],
  ])('maps revocation check %j to %s', (check, code) => {
    const err = revocationError(check);
    expect(err?.code ?? null).toBe(code);
    // The internal reason never reaches the client-facing error.
    if (check.state === 'revoked') expect(JSON.stringify({ message: err?.message, meta: err?.meta })).not.toContain(check.reason);
  });

  it('maps a refused rate limit to RATE_LIMITED with whole retry seconds', () => {
    expect(rateLimitError({ allowed: true, source: 'shared' })).toBeNull();
    const err = rateLimitError({ allowed: false, retryAfterMs: 1200, scope: 'connection', source: 'local' });
    expect(err?.code).toBe('RATE_LIMITED');
    expect(err?.meta).toEqual({ retryAfterSeconds: 2, scope: 'connection' });
  });

  it('maps a refused lease to CONCURRENCY_LIMITED', () => {
    const err = concurrencyError({ ok: false, scope: 'user', source: 'shared' });
    expect(err?.code).toBe('CONCURRENCY_LIMITED');
    expect(err?.meta).toEqual({ scope: 'user' });
    expect(ERROR_CODES.REVOCATION_STATUS_UNKNOWN.sqlstate).toBe('57P03');
  });
});
