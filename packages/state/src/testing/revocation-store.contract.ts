import { AppError } from '@pa/kit';
import type { Clock } from '../clock';
import type { Revocation, RevocationStore, RevokeInput } from '../revocation-store';
import { createManualClock, type ManualClock } from './manual-clock';
import { within } from './wait-for';

/**
 * Two nodes sharing revocation state, both started. For the memory store,
 * which is the single-node embedded default, both are the same store.
 */
export type RevocationNodes = (clock: Clock) => Promise<{ a: RevocationStore; b: RevocationStore }>;

/** Resolves with the first revocation `store` announces that matches `id`. */
export const nextRevocation = (store: RevocationStore, id: string): Promise<Revocation> =>
  new Promise((resolve) => {
    const off = store.onRevoked((r) => {
      if (r.id !== id) return;
      off();
      resolve(r);
    });
  });

/** The behaviour every RevocationStore shares; `nodes` builds the pair under test (and cleans up after itself). */
export const describeRevocationStoreContract = (nodes: RevocationNodes): void => {
  let clock: ManualClock;
  beforeEach(() => {
    clock = createManualClock();
  });

  it("announces a revocation issued on one node to the other node's listeners and check", async () => {
    const { a, b } = await nodes(clock.now);
    const seen = nextRevocation(b, 'grt_1');
    await a.revoke({ kind: 'grant', id: 'grt_1', reason: 'admin', ttlSeconds: 60 });
    // SECURITY.md: revocation takes effect on every node within seconds; a second is the bound here.
    await expect(within(seen, 1000, 'the revocation reaching the other node')).resolves.toMatchObject({ kind: 'grant', id: 'grt_1', reason: 'admin', expiresAt: clock.now() + 60_000 });
    expect(b.check({ grantId: 'grt_1', userId: 'usr_1' })).toEqual({ state: 'revoked', kind: 'grant', reason: 'admin' });
    expect(a.check({ grantId: 'grt_1', userId: 'usr_1' })).toEqual({ state: 'revoked', kind: 'grant', reason: 'admin' });
    expect(b.check({ grantId: 'grt_2', userId: 'usr_1' })).toEqual({ state: 'ok' });
  });

  const subject = { grantId: 'grt_s', userId: 'usr_s', sessionId: 'ses_s' };
  it.each([
    ['grant', 'grt_s', [true, false, false, true]],
    ['user', 'usr_s', [true, true, false, false]],
    ['session', 'ses_s', [true, false, true, false]],
  ] as const)('a %s revocation covers exactly the subjects that carry it', async (kind, id, expected) => {
    const { a, b } = await nodes(clock.now);
    const seen = nextRevocation(b, id);
    await a.revoke({ kind, id, reason: `${kind}-revoked`, ttlSeconds: 60 });
    await seen;
    const subjects = [
      subject, // carries all three
      { grantId: 'grt_other', userId: 'usr_s' }, // same user, no session
      { grantId: 'grt_other', userId: 'usr_other', sessionId: 'ses_s' }, // same session only
      { grantId: 'grt_s', userId: 'usr_other' }, // same grant only
    ];
    expect(subjects.map((s) => b.check(s).state === 'revoked')).toEqual(expected);
    expect(b.check(subject)).toEqual({ state: 'revoked', kind, reason: `${kind}-revoked` });
  });

  it('forgets a revocation once its TTL has passed', async () => {
    const { a, b } = await nodes(clock.now);
    const seen = nextRevocation(b, 'grt_ttl');
    await a.revoke({ kind: 'grant', id: 'grt_ttl', reason: 'admin', ttlSeconds: 30 });
    await seen;
    clock.advance(29_999);
    expect(b.check({ grantId: 'grt_ttl', userId: 'usr_1' }).state).toBe('revoked');
    clock.advance(1);
    expect(b.check({ grantId: 'grt_ttl', userId: 'usr_1' })).toEqual({ state: 'ok' });
    expect(a.check({ grantId: 'grt_ttl', userId: 'usr_1' })).toEqual({ state: 'ok' });
  });

  it('never shortens a longer revocation already in force', async () => {
    const { a, b } = await nodes(clock.now);
    const first = nextRevocation(b, 'usr_long');
    await a.revoke({ kind: 'user', id: 'usr_long', reason: 'user-disabled', ttlSeconds: 25 });
    await first;
    clock.advance(1);
    const second = nextRevocation(b, 'usr_long');
    await a.revoke({ kind: 'user', id: 'usr_long', reason: 'logout', ttlSeconds: 10 });
    await second;
    clock.advance(15_000);
    expect(b.check({ grantId: 'grt_1', userId: 'usr_long' }).state).toBe('revoked');
    clock.advance(10_000);
    expect(b.check({ grantId: 'grt_1', userId: 'usr_long' })).toEqual({ state: 'ok' });
  });

  it('tells each listener once per revocation, stops after removal, and survives a throwing listener', async () => {
    const { a, b } = await nodes(clock.now);
    const heard: string[] = [];
    const offA = a.onRevoked((r) => heard.push(`a:${r.id}`));
    b.onRevoked(() => {
      throw new Error('listener bug');
    });
    const offB = b.onRevoked((r) => heard.push(`b:${r.id}`));
    const onB = nextRevocation(b, 'grt_x1');
    await a.revoke({ kind: 'grant', id: 'grt_x1', reason: 'admin', ttlSeconds: 60 });
    await onB;
    // A revocation from the other side, seen by `a`, proves `a` also processed the echo of its own.
    const onA = nextRevocation(a, 'grt_x2');
    await b.revoke({ kind: 'grant', id: 'grt_x2', reason: 'admin', ttlSeconds: 60 });
    await onA;
    const unique = new Set(heard);
    expect(heard.length).toBe(unique.size);
    expect(unique).toEqual(new Set(['a:grt_x1', 'b:grt_x1', 'a:grt_x2', 'b:grt_x2']));
    offA();
    offB();
    const last = nextRevocation(b, 'grt_x3');
    await a.revoke({ kind: 'grant', id: 'grt_x3', reason: 'admin', ttlSeconds: 60 });
    await last;
    expect(heard.some((h) => h.endsWith('grt_x3'))).toBe(false);
  });

  it.each<[string, Partial<RevokeInput>]>([
    ['an empty id', { id: '' }],
    ['a zero TTL', { ttlSeconds: 0 }],
    ['a negative TTL', { ttlSeconds: -5 }],
    ['a TTL beyond 30 days', { ttlSeconds: 31 * 24 * 3600 }],
    ['an unknown kind', { kind: 'role' as never }],
    ['an empty reason', { reason: '' }],
  ])('rejects %s with VALIDATION_FAILED', async (_name, change) => {
    const { a } = await nodes(clock.now);
    const input: RevokeInput = { kind: 'grant', id: 'grt_v', reason: 'admin', ttlSeconds: 60, ...change };
    const err = await a.revoke(input).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('VALIDATION_FAILED');
    expect(a.check({ grantId: 'grt_v', userId: 'usr_v' })).toEqual({ state: 'ok' });
  });

  it('reports connected, fresh state once started', async () => {
    const { a, b } = await nodes(clock.now);
    for (const store of [a, b]) expect(store.health()).toEqual({ connected: true, lastSyncAt: clock.now(), stale: false });
  });
};
