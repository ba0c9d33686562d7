import { GrantKeeper, type GrantEnd, type KeptGrant, type Timers } from './grant-keeper';

/** A clock and timers that only move when the test says so. */
class FakeTime implements Timers {
  now = 0;
  private timers: { id: number; at: number; fn: () => void }[] = [];
  private nextId = 1;
  set(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ id, at: this.now + ms, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  get pending(): number[] {
    return this.timers.map((t) => t.at).sort((a, b) => a - b);
  }
  /** Moves time forward, firing due timers in order and letting their promises settle. */
  async advance(ms: number): Promise<void> {
    const until = this.now + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.now = due.at;
      due.fn();
      for (let i = 0; i < 5; i += 1) await new Promise((r) => setImmediate(r));
    }
    this.now = until;
  }
}

interface G extends KeptGrant {
  n: number;
}

const grant = (n: number, issuedAt: number, opts: { ttl?: number; renewAfter?: number; sessionEndsAt?: number } = {}): G => ({
  n,
  id: `grt_${n}`,
  expiresAt: new Date(issuedAt + (opts.ttl ?? 60_000)),
  renewAt: new Date(issuedAt + (opts.renewAfter ?? 40_000)),
  sessionEndsAt: opts.sessionEndsAt === undefined ? null : new Date(opts.sessionEndsAt),
});

const setup = (renew: (g: G) => Promise<G>, isRetryable = (e: unknown) => (e as Error).message === 'unavailable', initial = grant(1, 0)) => {
  const time = new FakeTime();
  const ended: GrantEnd<G>[] = [];
  const retries: number[] = [];
  const renewed: number[] = [];
  const keeper = new GrantKeeper<G>({
    initial,
    renew,
    isRetryable,
    onEnded: (e) => ended.push(e),
    onRetry: (_e, d) => retries.push(d),
    onRenewed: (g) => renewed.push(g.n),
    now: () => time.now,
    timers: time,
  });
  keeper.start();
  return { time, keeper, ended, retries, renewed };
};

describe('GrantKeeper', () => {
  it('renews at renew_at, and again at the new grant\'s renew_at', async () => {
    let n = 1;
    const calls: number[] = [];
    const { time, keeper, renewed } = setup(async (g) => {
      calls.push(time.now);
      n += 1;
      expect(g.n).toBe(n - 1);
      return grant(n, time.now);
    });
    await time.advance(39_999);
    expect(calls).toEqual([]);
    await time.advance(1);
    expect(calls).toEqual([40_000]);
    expect(keeper.current.n).toBe(2);
    await time.advance(40_000);
    expect(calls).toEqual([40_000, 80_000]);
    expect(renewed).toEqual([2, 3]);
    keeper.stop();
    expect(time.pending).toEqual([]);
  });

  it('retries a retryable failure with doubling backoff, capped at the expiry, then reports expired', async () => {
    const calls: number[] = [];
    const { time, ended, retries, keeper } = setup(async () => {
      calls.push(time.now);
      throw new Error('unavailable');
    });
    await time.advance(60_000);
    expect(calls).toEqual([40_000, 41_000, 43_000, 47_000, 55_000, 60_000]);
    expect(retries).toEqual([1000, 2000, 4000, 8000, 5000]);
    expect(ended).toHaveLength(1);
    expect(ended[0]).toMatchObject({ kind: 'expired' });
    expect(keeper.current.n).toBe(1);
  });

  it('recovers after a transient failure and resets the backoff', async () => {
    let fail = 2;
    const { time, keeper, retries } = setup(async () => {
      if (fail-- > 0) throw new Error('unavailable');
      return grant(2, time.now);
    });
    await time.advance(43_000);
    expect(keeper.current.n).toBe(2);
    expect(retries).toEqual([1000, 2000]);
  });

  it('ends at once when renewal is refused (revoked)', async () => {
    const { time, ended } = setup(async () => {
      throw new Error('revoked');
    });
    await time.advance(40_000);
    expect(ended).toEqual([expect.objectContaining({ kind: 'revoked', error: new Error('revoked') })]);
    expect(time.pending).toEqual([]);
  });

  it('does not renew a grant that already reaches the session end, and reports the end at expiry', async () => {
    const renew = jest.fn(async () => grant(2, 0));
    const { time, ended } = setup(renew, undefined, grant(1, 0, { ttl: 30_000, renewAfter: 20_000, sessionEndsAt: 30_000 }));
    await time.advance(29_999);
    expect(ended).toEqual([]);
    await time.advance(1);
    expect(renew).not.toHaveBeenCalled();
    expect(ended).toEqual([expect.objectContaining({ kind: 'session-ended' })]);
  });

  it('never spins on a renew_at in the past', async () => {
    const calls: number[] = [];
    const { time } = setup(async () => {
      calls.push(time.now);
      return grant(calls.length + 1, time.now, { renewAfter: -5_000 });
    }, undefined, grant(1, 0, { renewAfter: -1 }));
    await time.advance(3_500);
    expect(calls).toEqual([1000, 2000, 3000]);
  });

  it('calls nothing after stop, even when a renewal was in flight', async () => {
    let release: (g: G) => void = () => {};
    const { time, keeper, ended, renewed } = setup(() => new Promise<G>((r) => (release = r)));
    await time.advance(40_000);
    keeper.stop();
    release(grant(2, time.now));
    await time.advance(100_000);
    expect(renewed).toEqual([]);
    expect(ended).toEqual([]);
    expect(keeper.current.n).toBe(1);
  });

  it('checkNow renews at once: a refusal ends it as revoked, a new grant carries on', async () => {
    let refuse = false;
    const calls: number[] = [];
    const { time, keeper, ended, renewed } = setup(async () => {
      calls.push(time.now);
      if (refuse) throw new Error('revoked');
      return grant(calls.length + 1, time.now);
    });
    await time.advance(5_000);
    keeper.checkNow();
    await time.advance(0);
    expect(calls).toEqual([5_000]);
    expect(renewed).toEqual([2]);
    // The new grant is renewed at its own renew_at, not the old one's.
    expect(time.pending).toEqual([45_000]);
    refuse = true;
    keeper.checkNow();
    await time.advance(0);
    expect(ended).toEqual([expect.objectContaining({ kind: 'revoked', error: new Error('revoked') })]);
    expect(time.pending).toEqual([]);
  });

  it('checkNow does nothing while a renewal is under way, for a grant reaching the session end, or after stop', async () => {
    let release: (g: G) => void = () => {};
    const renew = jest.fn(() => new Promise<G>((r) => (release = r)));
    const { time, keeper } = setup(renew);
    await time.advance(40_000);
    expect(renew).toHaveBeenCalledTimes(1);
    keeper.checkNow();
    await time.advance(0);
    expect(renew).toHaveBeenCalledTimes(1);
    release(grant(2, time.now));
    await time.advance(0);
    keeper.stop();
    keeper.checkNow();
    await time.advance(100_000);
    expect(renew).toHaveBeenCalledTimes(1);

    const last = jest.fn(async () => grant(3, 0));
    const atEnd = setup(last, undefined, grant(1, 0, { ttl: 30_000, renewAfter: 20_000, sessionEndsAt: 30_000 }));
    atEnd.keeper.checkNow();
    await atEnd.time.advance(1_000);
    expect(last).not.toHaveBeenCalled();
    expect(atEnd.time.pending).toEqual([30_000]);
  });
});
