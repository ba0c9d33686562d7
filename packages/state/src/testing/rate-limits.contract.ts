import type { RateLimits, RateLimitWindows } from '../rate-limits';

/**
 * Two nodes sharing rate-limit state, built with `windows`. For the memory
 * implementation (the single-node default) both are the same instance.
 */
export type RateLimitNodes = (windows: Partial<RateLimitWindows>) => Promise<{ a: RateLimits; b: RateLimits }>;

const minute = (points: number) => ({ points, durationSeconds: 60 });

/** The behaviour every RateLimits implementation shares. */
export const describeRateLimitsContract = (nodes: RateLimitNodes): void => {
  it("counts a user's tunnels across nodes: consumed on A, refused on B", async () => {
    const { a, b } = await nodes({ tunnelPerUser: minute(2), tunnelPerConnection: minute(100) });
    expect(await a.consumeTunnel('usr_1', 'con_1')).toMatchObject({ allowed: true });
    expect(await a.consumeTunnel('usr_1', 'con_2')).toMatchObject({ allowed: true });
    const refused = await b.consumeTunnel('usr_1', 'con_3');
    expect(refused).toMatchObject({ allowed: false, scope: 'user' });
    if (refused.allowed) throw new Error('unreachable');
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(await b.consumeTunnel('usr_2', 'con_1')).toMatchObject({ allowed: true });
  });

  it("counts a connection's tunnels across users and nodes", async () => {
    const { a, b } = await nodes({ tunnelPerUser: minute(100), tunnelPerConnection: minute(3) });
    expect(await a.consumeTunnel('usr_1', 'con_1')).toMatchObject({ allowed: true });
    expect(await b.consumeTunnel('usr_2', 'con_1')).toMatchObject({ allowed: true });
    expect(await a.consumeTunnel('usr_3', 'con_1')).toMatchObject({ allowed: true });
    expect(await b.consumeTunnel('usr_4', 'con_1')).toMatchObject({ allowed: false, scope: 'connection' });
    expect(await b.consumeTunnel('usr_4', 'con_2')).toMatchObject({ allowed: true });
  });

  it('keeps request windows apart from tunnel windows', async () => {
    const { a, b } = await nodes({ tunnelPerUser: minute(1), requestPerUser: minute(3), requestPerConnection: minute(100) });
    expect(await a.consumeTunnel('usr_1', 'con_1')).toMatchObject({ allowed: true });
    expect(await a.consumeTunnel('usr_1', 'con_1')).toMatchObject({ allowed: false, scope: 'user' });
    for (let i = 0; i < 3; i += 1) expect(await (i % 2 ? a : b).consumeRequest('usr_1', 'con_1')).toMatchObject({ allowed: true });
    expect(await a.consumeRequest('usr_1', 'con_1')).toMatchObject({ allowed: false, scope: 'user' });
  });

  it('when both windows refuse, names the one with the longer wait', async () => {
    const { a } = await nodes({ requestPerUser: { points: 1, durationSeconds: 5 }, requestPerConnection: { points: 1, durationSeconds: 60 } });
    expect(await a.consumeRequest('usr_1', 'con_1')).toMatchObject({ allowed: true });
    const refused = await a.consumeRequest('usr_1', 'con_1');
    expect(refused).toMatchObject({ allowed: false, scope: 'connection' });
    if (refused.allowed) throw new Error('unreachable');
    expect(refused.retryAfterMs).toBeGreaterThan(5_000);
  });

  it('never allows more than the window under concurrent consumption', async () => {
    const { a, b } = await nodes({ requestPerUser: minute(5), requestPerConnection: minute(1000) });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).consumeRequest('usr_burst', 'con_1')));
    expect(results.filter((r) => r.allowed)).toHaveLength(5);
  });
};
