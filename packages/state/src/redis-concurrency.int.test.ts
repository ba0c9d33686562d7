import type { Redis } from 'ioredis';
import { createTestRedis, freePort, type TestRedis } from '@pa/testing';
import type { Clock } from './clock';
import type { AcquireRequest, Lease } from './concurrency';
import { stateKeys } from './keys';
import { RedisConcurrency } from './redis-concurrency';
import { openRedis } from './redis-connection';
import { describeConcurrencyContract } from './testing/concurrency.contract';
import { startFaultProxy, type FaultProxy } from '@pa/testing';
import { createManualClock } from './testing/manual-clock';
import { timed, waitFor } from './testing/wait-for';

let redis: TestRedis;
let counter = 0;
const clients: Redis[] = [];
const nodes: RedisConcurrency[] = [];
const proxies: FaultProxy[] = [];

beforeAll(async () => {
  redis = await createTestRedis();
});
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.close();
  for (const c of clients.splice(0)) c.disconnect();
  for (const p of proxies.splice(0)) await p.close();
});
afterAll(async () => {
  await redis.close();
});

const freshPrefix = (): string => `${redis.prefix}${(counter += 1)}:`;

/** One node: a connection of its own and a RedisConcurrency on it. */
const node = async (keyPrefix: string, clock: Clock, url = redis.url, timeoutMs = 50): Promise<{ concurrency: RedisConcurrency; client: Redis }> => {
  const client = openRedis(url);
  client.on('error', () => undefined);
  clients.push(client);
  if (url === redis.url) await client.ping();
  const concurrency = new RedisConcurrency({ client, keyPrefix, clock, timeoutMs });
  nodes.push(concurrency);
  return { concurrency, client };
};

const request = (over: Partial<AcquireRequest> = {}): AcquireRequest => ({ grantId: 'grt_1', userId: 'usr_1', maxPerGrant: 1, maxPerUser: 10, leaseMs: 10_000, ...over });

const leaseOf = (result: Awaited<ReturnType<RedisConcurrency['acquire']>>): Lease => {
  if (!result.ok) throw new Error(`expected a lease, got a refusal (${result.scope})`);
  return result.lease;
};

describe('RedisConcurrency: shared behaviour', () => {
  describeConcurrencyContract(async (clock) => {
    const prefix = freshPrefix();
    const [a, b] = await Promise.all([node(prefix, clock), node(prefix, clock)]);
    return { a: a.concurrency, b: b.concurrency };
  });
});

describe('RedisConcurrency: Redis specifics', () => {
  it('keeps leases in per-grant and per-user sorted sets scored by expiry, and removes them on release', async () => {
    const clock = createManualClock();
    const prefix = freshPrefix();
    const { concurrency } = await node(prefix, clock.now);
    const result = await concurrency.acquire(request());
    expect(result).toMatchObject({ ok: true, source: 'shared' });
    const lease = leaseOf(result);
    const keys = stateKeys(prefix);
    expect(Number(await redis.client.zscore(keys.concurrencyGrant('grt_1'), lease.id))).toBe(clock.now() + 10_000);
    expect(Number(await redis.client.zscore(keys.concurrencyUser('usr_1'), lease.id))).toBe(clock.now() + 10_000);
    expect(await redis.client.pttl(keys.concurrencyGrant('grt_1'))).toBeGreaterThan(10_000);
    await lease.release();
    expect(await redis.client.zcard(keys.concurrencyGrant('grt_1'))).toBe(0);
    expect(await redis.client.zcard(keys.concurrencyUser('usr_1'))).toBe(0);
  });

  it("reclaims the slots of a node that crashed holding them once their leases expire", async () => {
    const clock = createManualClock();
    const prefix = freshPrefix();
    const crashing = await node(prefix, clock.now);
    const { concurrency: survivor } = await node(prefix, clock.now);
    const orphan = leaseOf(await crashing.concurrency.acquire(request()));
    crashing.client.disconnect(); // the node dies: no renewal, no release
    expect(await survivor.acquire(request())).toMatchObject({ ok: false, scope: 'grant', source: 'shared' });
    clock.advance(10_000);
    expect(await survivor.acquire(request())).toMatchObject({ ok: true, source: 'shared' });
    expect(await redis.client.zscore(stateKeys(prefix).concurrencyGrant('grt_1'), orphan.id)).toBeNull();
  });

  it('counts locally, at once, when Redis is unreachable', async () => {
    const clock = createManualClock();
    const { concurrency } = await node(freshPrefix(), clock.now, `redis://127.0.0.1:${await freePort()}`);
    const first = await timed(() => concurrency.acquire(request()));
    expect(first.value).toMatchObject({ ok: true, source: 'local' });
    expect(first.elapsedMs).toBeLessThan(50);
    expect(await concurrency.acquire(request())).toMatchObject({ ok: false, scope: 'grant', source: 'local' });
    await leaseOf(first.value).release();
    expect(await concurrency.acquire(request())).toMatchObject({ ok: true, source: 'local' });
  });

  it('writes a lease granted during an outage to Redis on its first renewal after reconnect', async () => {
    const clock = createManualClock();
    const prefix = freshPrefix();
    const proxy = await startFaultProxy(redis.url);
    proxies.push(proxy);
    const { concurrency, client } = await node(prefix, clock.now, proxy.url);
    await client.ping();
    await proxy.cut();
    await waitFor('the connection to drop', () => client.status !== 'ready');
    const lease = leaseOf(await concurrency.acquire(request({ autoRenew: false })));
    await proxy.restore();
    await waitFor('the connection to come back', () => client.status === 'ready');
    clock.advance(1000); // past the cool-down that the outage started
    await expect(lease.renew()).resolves.toBe(true);
    expect(Number(await redis.client.zscore(stateKeys(prefix).concurrencyGrant('grt_1'), lease.id))).toBe(clock.now() + 10_000);
    const { concurrency: other } = await node(prefix, clock.now);
    expect(await other.acquire(request())).toMatchObject({ ok: false, scope: 'grant', source: 'shared' });
  });

  it('renews on its own timer', async () => {
    const prefix = freshPrefix();
    let now = 1_700_000_000_000;
    const { concurrency } = await node(prefix, () => now);
    const lease = leaseOf(await concurrency.acquire(request({ leaseMs: 300 })));
    const first = lease.expiresAt;
    now += 50;
    await waitFor('the timer to renew the lease', () => lease.expiresAt > first);
    expect(Number(await redis.client.zscore(stateKeys(prefix).concurrencyGrant('grt_1'), lease.id))).toBe(lease.expiresAt);
  });
});
