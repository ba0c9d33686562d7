import { createTestRedis, type TestRedis } from '@pa/testing';
import { createState, type State } from './create-state';
import { RedisConcurrency } from './redis-concurrency';
import { RedisRevocationStore } from './redis-revocation-store';
import { RedisRateLimits } from './rate-limits';
import { nextRevocation } from './testing/revocation-store.contract';

let redis: TestRedis;
const states: State[] = [];
beforeAll(async () => {
  redis = await createTestRedis();
});
afterEach(async () => {
  for (const s of states.splice(0)) await s.close();
});
afterAll(async () => {
  await redis.close();
});

const open = (options: Parameters<typeof createState>[0]): State => {
  const state = createState(options);
  states.push(state);
  return state;
};

describe('createState with Redis', () => {
  it('builds the Redis implementations from a URL; two states share revocations, limits and caps', async () => {
    const keyPrefix = `${redis.prefix}url:`;
    const rateLimits = { tunnelPerUser: { points: 1, durationSeconds: 60 } };
    const a = open({ redis: redis.url, keyPrefix, rateLimits });
    const b = open({ redis: redis.url, keyPrefix, rateLimits });
    expect(a.mode).toBe('redis');
    expect(a.revocations).toBeInstanceOf(RedisRevocationStore);
    expect(a.rateLimits).toBeInstanceOf(RedisRateLimits);
    expect(a.concurrency).toBeInstanceOf(RedisConcurrency);
    await Promise.all([a.revocations.start(), b.revocations.start()]);

    const seen = nextRevocation(b.revocations, 'ses_1');
    await a.revocations.revoke({ kind: 'session', id: 'ses_1', reason: 'logout', ttlSeconds: 60 });
    await seen;
    expect(b.revocations.check({ grantId: 'grt_1', userId: 'usr_1', sessionId: 'ses_1' })).toMatchObject({ state: 'revoked', kind: 'session' });

    expect(await a.rateLimits.consumeTunnel('usr_1', 'con_1')).toEqual({ allowed: true, source: 'shared' });
    expect(await b.rateLimits.consumeTunnel('usr_1', 'con_1')).toMatchObject({ allowed: false, scope: 'user', source: 'shared' });

    const held = await a.concurrency.acquire({ grantId: 'grt_1', userId: 'usr_1', maxPerGrant: 1, maxPerUser: 5 });
    expect(held).toMatchObject({ ok: true, source: 'shared' });
    expect(await b.concurrency.acquire({ grantId: 'grt_1', userId: 'usr_1', maxPerGrant: 1, maxPerUser: 5 })).toMatchObject({ ok: false, scope: 'grant' });
  });

  it('uses a client it is given and leaves it open on close', async () => {
    const state = createState({ redis: redis.client, keyPrefix: `${redis.prefix}client:` });
    await state.revocations.start();
    expect(state.revocations.health()).toMatchObject({ connected: true, stale: false });
    await state.close();
    expect(redis.client.status).toBe('ready');
    await expect(redis.client.ping()).resolves.toBe('PONG');
  });

  it('closes the connection it opened, releasing leases first', async () => {
    const keyPrefix = `${redis.prefix}close:`;
    const state = createState({ redis: redis.url, keyPrefix });
    await state.revocations.start();
    const held = await state.concurrency.acquire({ grantId: 'grt_c', userId: 'usr_c', maxPerGrant: 1, maxPerUser: 1 });
    expect(held.ok).toBe(true);
    await state.close();
    expect(await redis.client.zcard(`${keyPrefix}cc:grant:grt_c`)).toBe(0);
    expect(state.revocations.health().connected).toBe(false);
  });
});
