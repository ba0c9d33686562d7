import type { Redis } from 'ioredis';
import { AppError, createCaptureLogger } from '@pa/kit';
import { createTestRedis, freePort, type TestRedis } from '@pa/testing';
import type { Clock } from './clock';
import { stateKeys } from './keys';
import { openRedis } from './redis-connection';
import { RedisRevocationStore, type RedisRevocationStoreOptions } from './redis-revocation-store';
import { startFaultProxy, type FaultProxy } from '@pa/testing';
import { createManualClock } from './testing/manual-clock';
import { describeRevocationStoreContract, nextRevocation } from './testing/revocation-store.contract';
import { waitFor } from './testing/wait-for';

let redis: TestRedis;
let counter = 0;
const clients: Redis[] = [];
const stores: RedisRevocationStore[] = [];
const proxies: FaultProxy[] = [];

beforeAll(async () => {
  redis = await createTestRedis();
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const c of clients.splice(0)) c.disconnect();
  for (const p of proxies.splice(0)) await p.close();
});
afterAll(async () => {
  await redis.close();
});

/** A fresh key prefix under this file's own. */
const freshPrefix = (): string => `${redis.prefix}${(counter += 1)}:`;

/** One node: its own connection (to `url`, by default the test Redis) and store. Not started. */
const node = (keyPrefix: string, clock: Clock, url = redis.url, options: Partial<RedisRevocationStoreOptions> = {}): RedisRevocationStore => {
  const client = openRedis(url);
  client.on('error', () => undefined);
  clients.push(client);
  const store = new RedisRevocationStore({ client, keyPrefix, clock, resyncIntervalMs: 60_000, ...options });
  stores.push(store);
  return store;
};

describe('RedisRevocationStore: shared behaviour', () => {
  describeRevocationStoreContract(async (clock) => {
    const prefix = freshPrefix();
    const a = node(prefix, clock);
    const b = node(prefix, clock);
    await Promise.all([a.start(), b.start()]);
    return { a, b };
  });
});

describe('RedisRevocationStore: Redis specifics', () => {
  it('stores each revocation as a key with a TTL and announces it on the channel', async () => {
    const clock = createManualClock();
    const prefix = freshPrefix();
    const a = node(prefix, clock.now);
    await a.start();
    await a.revoke({ kind: 'session', id: 'ses_1', reason: 'logout', ttlSeconds: 120 });
    const key = stateKeys(prefix).revocation('session', 'ses_1');
    expect(JSON.parse((await redis.client.get(key)) ?? 'null')).toEqual({ reason: 'logout', at: clock.now() });
    const ttl = await redis.client.pttl(key);
    expect(ttl).toBeGreaterThan(110_000);
    expect(ttl).toBeLessThanOrEqual(120_000);
  });

  it('picks up a key written straight to Redis, without an announcement, on resync', async () => {
    const clock = createManualClock();
    const prefix = freshPrefix();
    const b = node(prefix, clock.now);
    await b.start();
    await redis.client.set(stateKeys(prefix).revocation('user', 'usr_quiet'), JSON.stringify({ reason: 'user-disabled', at: 1 }), 'PX', 60_000);
    expect(b.check({ grantId: 'grt_1', userId: 'usr_quiet' })).toEqual({ state: 'ok' });
    const seen = nextRevocation(b, 'usr_quiet');
    await expect(b.resync()).resolves.toBe(true);
    await expect(seen).resolves.toMatchObject({ kind: 'user', reason: 'user-disabled' });
    expect(b.check({ grantId: 'grt_1', userId: 'usr_quiet' })).toEqual({ state: 'revoked', kind: 'user', reason: 'user-disabled' });
  });

  it('resyncs on its own timer', async () => {
    const clock = createManualClock();
    const prefix = freshPrefix();
    const b = node(prefix, clock.now, redis.url, { resyncIntervalMs: 25 });
    await b.start();
    const seen = nextRevocation(b, 'grt_timer');
    await redis.client.set(stateKeys(prefix).revocation('grant', 'grt_timer'), JSON.stringify({ reason: 'admin', at: 2 }), 'PX', 60_000);
    await expect(seen).resolves.toMatchObject({ kind: 'grant', id: 'grt_timer' });
  });

  it('fails closed on an unreadable value, and holds a key without TTL while it exists', async () => {
    const clock = createManualClock();
    const prefix = freshPrefix();
    const { logger, lines } = createCaptureLogger('state-test');
    const b = node(prefix, clock.now, redis.url, { logger });
    await redis.client.set(stateKeys(prefix).revocation('grant', 'grt_garbled'), 'not json', 'PX', 60_000);
    await redis.client.set(stateKeys(prefix).revocation('grant', 'grt_forever'), JSON.stringify({ reason: 'manual', at: 3 }));
    await b.start();
    expect(b.check({ grantId: 'grt_garbled', userId: 'usr_1' })).toEqual({ state: 'revoked', kind: 'grant', reason: 'unreadable' });
    expect(b.check({ grantId: 'grt_forever', userId: 'usr_1' })).toMatchObject({ state: 'revoked', reason: 'manual' });
    expect(lines.some((l) => l.includes('Revocation value unreadable'))).toBe(true);
    // A key without TTL is re-confirmed by each resync; once deleted, it lapses after staleness + interval.
    await redis.client.del(stateKeys(prefix).revocation('grant', 'grt_forever'));
    clock.advance(30_000);
    await expect(b.resync()).resolves.toBe(true);
    expect(b.check({ grantId: 'grt_forever', userId: 'usr_1' }).state).toBe('revoked');
    clock.advance(60_001);
    await expect(b.resync()).resolves.toBe(true);
    expect(b.check({ grantId: 'grt_forever', userId: 'usr_1' })).toEqual({ state: 'ok' });
  });

  it('lets Redis expire the key with its TTL, so a node started later does not see it', async () => {
    const prefix = freshPrefix();
    const a = node(prefix, Date.now);
    await a.start();
    await a.revoke({ kind: 'grant', id: 'grt_short', reason: 'admin', ttlSeconds: 0.2 });
    const key = stateKeys(prefix).revocation('grant', 'grt_short');
    await waitFor('Redis to expire the revocation key', async () => (await redis.client.exists(key)) === 0);
    const late = node(prefix, Date.now);
    await late.start();
    expect(late.check({ grantId: 'grt_short', userId: 'usr_1' })).toEqual({ state: 'ok' });
    expect(late.health()).toMatchObject({ connected: true, stale: false });
  });

  it('answers from the last known state during an outage, then `unknown` past the staleness bound, and resyncs on reconnect', async () => {
    const clock = createManualClock();
    const prefix = freshPrefix();
    const proxy = await startFaultProxy(redis.url);
    proxies.push(proxy);
    const a = node(prefix, clock.now);
    const b = node(prefix, clock.now, proxy.url, { maxStalenessMs: 30_000 });
    await Promise.all([a.start(), b.start()]);
    const seen = nextRevocation(b, 'grt_known');
    await a.revoke({ kind: 'grant', id: 'grt_known', reason: 'admin', ttlSeconds: 3600 });
    await seen;

    await proxy.cut();
    await waitFor('node B to notice the outage', () => !b.health().connected);
    expect(b.check({ grantId: 'grt_known', userId: 'usr_1' })).toMatchObject({ state: 'revoked' });
    expect(b.check({ grantId: 'grt_other', userId: 'usr_1' })).toEqual({ state: 'ok' });
    clock.advance(30_000);
    expect(b.check({ grantId: 'grt_other', userId: 'usr_1' })).toEqual({ state: 'ok' });
    clock.advance(1);
    expect(b.check({ grantId: 'grt_other', userId: 'usr_1' })).toEqual({ state: 'unknown' });
    expect(b.check({ grantId: 'grt_known', userId: 'usr_1' })).toMatchObject({ state: 'revoked' });
    expect(b.health()).toMatchObject({ connected: false, stale: true });

    // Revoked while B is cut off: B misses the announcement and learns it from the resync on reconnect.
    await a.revoke({ kind: 'user', id: 'usr_missed', reason: 'user-disabled', ttlSeconds: 3600 });
    const caughtUp = nextRevocation(b, 'usr_missed');
    await proxy.restore();
    await expect(caughtUp).resolves.toMatchObject({ kind: 'user', reason: 'user-disabled' });
    expect(b.check({ grantId: 'grt_other', userId: 'usr_1' })).toEqual({ state: 'ok' });
    await waitFor('node B to resubscribe', () => b.health().connected);
    expect(b.health()).toEqual({ connected: true, lastSyncAt: clock.now(), stale: false });
    const live = nextRevocation(b, 'grt_after');
    await a.revoke({ kind: 'grant', id: 'grt_after', reason: 'admin', ttlSeconds: 60 });
    await expect(live).resolves.toMatchObject({ id: 'grt_after' });
  });

  it('starts without Redis, answers `unknown`, and refuses to revoke with DEPENDENCY_UNAVAILABLE', async () => {
    const clock = createManualClock();
    const deadUrl = `redis://127.0.0.1:${await freePort()}`;
    const store = node(freshPrefix(), clock.now, deadUrl, { syncTimeoutMs: 300 });
    await store.start();
    expect(store.health()).toEqual({ connected: false, lastSyncAt: null, stale: true });
    expect(store.check({ grantId: 'grt_1', userId: 'usr_1' })).toEqual({ state: 'unknown' });
    const err = await store.revoke({ kind: 'grant', id: 'grt_1', reason: 'admin', ttlSeconds: 60 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('DEPENDENCY_UNAVAILABLE');
    // Still honoured on this node: the safe direction.
    expect(store.check({ grantId: 'grt_1', userId: 'usr_1' })).toMatchObject({ state: 'revoked' });
  });
});
