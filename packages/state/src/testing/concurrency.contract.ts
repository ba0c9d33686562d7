import fc from 'fast-check';
import type { Clock } from '../clock';
import type { AcquireRequest, Concurrency, Lease } from '../concurrency';
import { createManualClock, type ManualClock } from './manual-clock';

/**
 * Two nodes sharing concurrency caps, on `clock`. For the memory
 * implementation (the single-node default) both are the same instance. Each
 * call gets fresh keys, so tests do not see each other's leases.
 */
export type ConcurrencyNodes = (clock: Clock) => Promise<{ a: Concurrency; b: Concurrency }>;

const request = (over: Partial<AcquireRequest> = {}): AcquireRequest => ({ grantId: 'grt_1', userId: 'usr_1', maxPerGrant: 2, maxPerUser: 10, ...over });

const leaseOf = (result: Awaited<ReturnType<Concurrency['acquire']>>): Lease => {
  if (!result.ok) throw new Error(`expected a lease, got a refusal (${result.scope})`);
  return result.lease;
};

/** The behaviour every Concurrency implementation shares. */
export const describeConcurrencyContract = (nodes: ConcurrencyNodes): void => {
  let clock: ManualClock;
  beforeEach(() => {
    clock = createManualClock();
  });

  it('caps live connections per grant across nodes; release frees a slot', async () => {
    const { a, b } = await nodes(clock.now);
    const first = leaseOf(await a.acquire(request()));
    leaseOf(await b.acquire(request()));
    expect(await a.acquire(request())).toMatchObject({ ok: false, scope: 'grant' });
    expect(await b.acquire(request({ grantId: 'grt_2' }))).toMatchObject({ ok: true });
    await first.release();
    expect(await b.acquire(request())).toMatchObject({ ok: true });
  });

  it('caps live connections per user across grants and nodes', async () => {
    const { a, b } = await nodes(clock.now);
    leaseOf(await a.acquire(request({ grantId: 'grt_1', maxPerUser: 2 })));
    leaseOf(await b.acquire(request({ grantId: 'grt_2', maxPerUser: 2 })));
    expect(await a.acquire(request({ grantId: 'grt_3', maxPerUser: 2 }))).toMatchObject({ ok: false, scope: 'user' });
    expect(await a.acquire(request({ grantId: 'grt_3', userId: 'usr_2', maxPerUser: 2 }))).toMatchObject({ ok: true });
  });

  it("reclaims a lease its holder stopped renewing once it expires (a crashed node's slot)", async () => {
    const { a, b } = await nodes(clock.now);
    leaseOf(await a.acquire(request({ maxPerGrant: 1, leaseMs: 10_000, autoRenew: false })));
    expect(await b.acquire(request({ maxPerGrant: 1 }))).toMatchObject({ ok: false, scope: 'grant' });
    clock.advance(9_999);
    expect(await b.acquire(request({ maxPerGrant: 1 }))).toMatchObject({ ok: false, scope: 'grant' });
    clock.advance(1);
    expect(await b.acquire(request({ maxPerGrant: 1 }))).toMatchObject({ ok: true });
  });

  it('keeps a renewed lease past its first expiry', async () => {
    const { a, b } = await nodes(clock.now);
    const lease = leaseOf(await a.acquire(request({ maxPerGrant: 1, leaseMs: 10_000, autoRenew: false })));
    clock.advance(9_000);
    await expect(lease.renew()).resolves.toBe(true);
    expect(lease.expiresAt).toBe(clock.now() + 10_000);
    clock.advance(9_000);
    expect(await b.acquire(request({ maxPerGrant: 1 }))).toMatchObject({ ok: false, scope: 'grant' });
  });

  it('reinstates an expired lease on renewal while the cap has room, and reports it lost once the slot is taken', async () => {
    const { a, b } = await nodes(clock.now);
    const lease = leaseOf(await a.acquire(request({ maxPerGrant: 1, leaseMs: 10_000, autoRenew: false })));
    clock.advance(10_000);
    await expect(lease.renew()).resolves.toBe(true);
    clock.advance(10_000);
    leaseOf(await b.acquire(request({ maxPerGrant: 1 })));
    await expect(lease.renew()).resolves.toBe(false);
  });

  it('makes release idempotent and refuses to renew a released lease', async () => {
    const { a, b } = await nodes(clock.now);
    const lease = leaseOf(await a.acquire(request({ maxPerGrant: 1 })));
    await lease.release();
    await lease.release();
    await expect(lease.renew()).resolves.toBe(false);
    leaseOf(await b.acquire(request({ maxPerGrant: 1 })));
    expect(await a.acquire(request({ maxPerGrant: 1 }))).toMatchObject({ ok: false, scope: 'grant' });
  });

  it('never grants more than the cap to concurrent callers', async () => {
    const { a, b } = await nodes(clock.now);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).acquire(request({ maxPerGrant: 3 }))));
    expect(results.filter((r) => r.ok)).toHaveLength(3);
  });

  it('rejects an invalid request with VALIDATION_FAILED', async () => {
    const { a } = await nodes(clock.now);
    await expect(a.acquire(request({ grantId: '' }))).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(a.acquire(request({ maxPerGrant: 1.5 }))).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('agrees with a model of live leases under any sequence of acquire, release and time', async () => {
    type Op = { op: 'acquire'; node: 0 | 1; grant: 0 | 1; user: 0 | 1 } | { op: 'release'; pick: number } | { op: 'advance'; ms: number };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('acquire' as const), node: fc.constantFrom(0 as const, 1 as const), grant: fc.constantFrom(0 as const, 1 as const), user: fc.constantFrom(0 as const, 1 as const) }),
      fc.record({ op: fc.constant('release' as const), pick: fc.nat() }),
      fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 6_000 }) }),
    );
    const caps = { maxPerGrant: 2, maxPerUser: 3, leaseMs: 10_000, autoRenew: false };
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 25 }), async (ops) => {
        const runClock = createManualClock();
        const { a, b } = await nodes(runClock.now);
        const held: Array<{ lease: Lease; grant: number; user: number }> = [];
        for (const step of ops) {
          const live = held.filter((h) => h.lease.expiresAt > runClock.now());
          if (step.op === 'advance') runClock.advance(step.ms);
          else if (step.op === 'release') {
            const victim = held.splice(step.pick % Math.max(1, held.length), 1)[0];
            await victim?.lease.release();
          } else {
            const grantCount = live.filter((h) => h.grant === step.grant).length;
            const userCount = live.filter((h) => h.user === step.user).length;
            const expected = grantCount < caps.maxPerGrant && userCount < caps.maxPerUser;
            const result = await (step.node ? b : a).acquire({ grantId: `grt_${step.grant}`, userId: `usr_${step.user}`, ...caps });
            expect(result.ok).toBe(expected);
            if (result.ok) held.push({ lease: result.lease, grant: step.grant, user: step.user });
          }
        }
        for (const h of held) await h.lease.release();
      }),
      { numRuns: 30 },
    );
  });
};
