import { AppError } from '@pa/kit';
import { createState } from './create-state';
import { MemoryConcurrency } from './memory-concurrency';
import { MemoryRevocationStore } from './memory-revocation-store';
import { MemoryRateLimits } from './rate-limits';
import { createManualClock } from './testing/manual-clock';

describe('createState without Redis', () => {
  it('builds the in-process implementations, which work together on the injected clock', async () => {
    const clock = createManualClock();
    const state = createState({ clock: clock.now, rateLimits: { tunnelPerUser: { points: 1, durationSeconds: 60 } } });
    try {
      expect(state.mode).toBe('memory');
      expect(state.revocations).toBeInstanceOf(MemoryRevocationStore);
      expect(state.rateLimits).toBeInstanceOf(MemoryRateLimits);
      expect(state.concurrency).toBeInstanceOf(MemoryConcurrency);
      await state.revocations.start();
      await state.revocations.revoke({ kind: 'grant', id: 'grt_1', reason: 'admin', ttlSeconds: 1 });
      expect(state.revocations.check({ grantId: 'grt_1', userId: 'usr_1' }).state).toBe('revoked');
      clock.advance(1000);
      expect(state.revocations.check({ grantId: 'grt_1', userId: 'usr_1' }).state).toBe('ok');
      expect(await state.rateLimits.consumeTunnel('usr_1', 'con_1')).toEqual({ allowed: true, source: 'local' });
      expect(await state.rateLimits.consumeTunnel('usr_1', 'con_1')).toMatchObject({ allowed: false, scope: 'user' });
    } finally {
      await state.close();
    }
  });

  it('releases leases still held on close', async () => {
    const state = createState();
    const result = await state.concurrency.acquire({ grantId: 'grt_1', userId: 'usr_1', maxPerGrant: 1, maxPerUser: 1 });
    expect(result.ok).toBe(true);
    await state.close();
    expect(await state.concurrency.acquire({ grantId: 'grt_1', userId: 'usr_1', maxPerGrant: 1, maxPerUser: 1, autoRenew: false })).toMatchObject({ ok: true });
  });

  it.each([
    ['a zero timeout', { timeoutMs: 0 }, 'timeoutMs'],
    ['a fractional window', { rateLimits: { requestPerUser: { points: 1.5, durationSeconds: 1 } } }, 'rateLimits.requestPerUser.points'],
    ['a sub-second window', { rateLimits: { requestPerUser: { points: 10, durationSeconds: 0 } } }, 'rateLimits.requestPerUser.durationSeconds'],
    ['an empty key prefix', { keyPrefix: '' }, 'keyPrefix'],
  ])('rejects %s with CONFIG_INVALID naming the field', (_name, options, path) => {
    let err: unknown;
    try {
      createState(options);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('CONFIG_INVALID');
    expect((err as AppError).details.map((d) => d.path)).toContain(path);
  });
});
