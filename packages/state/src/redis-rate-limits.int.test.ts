import type { Redis } from 'ioredis';
import { createCaptureLogger } from '@pa/kit';
import { createTestRedis, freePort, type TestRedis } from '@pa/testing';
import { stateKeys } from './keys';
import { RedisRateLimits, type RateLimitWindows, type RedisRateLimitsOptions } from './rate-limits';
import { openRedis } from './redis-connection';
import { startFaultProxy, type FaultProxy } from '@pa/testing';
import { createManualClock } from './testing/manual-clock';
import { describeRateLimitsContract } from './testing/rate-limits.contract';
import { timed } from './testing/wait-for';

let redis: TestRedis;
let counter = 0;
const clients: Redis[] = [];
const proxies: FaultProxy[] = [];

beforeAll(async () => {
  redis = await createTestRedis();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const p of proxies.splice(0)) await p.close();
});
afterAll(async () => {
  await redis.close();
});

const freshPrefix = (): string => `${redis.prefix}${(counter += 1)}:`;

/** A connection of its own (one per node), to the test Redis unless `url` says otherwise. */
const connect = (url = redis.url): Redis => {
  const client = openRedis(url);
  client.on('error', () => undefined);
  clients.push(client);
  return client;
};

const node = (keyPrefix: string, windows: Partial<RateLimitWindows>, client: Redis, options: Partial<RedisRateLimitsOptions> = {}): RedisRateLimits =>
  new RedisRateLimits({ client, keyPrefix, windows, ...options });

const tight = { requestPerUser: { points: 2, durationSeconds: 60 }, requestPerConnection: { points: 100, durationSeconds: 60 } };

describe('RedisRateLimits: shared behaviour', () => {
  describeRateLimitsContract(async (windows) => {
    const prefix = freshPrefix();
    const [ca, cb] = [connect(), connect()];
    await Promise.all([ca.ping(), cb.ping()]);
    return { a: node(prefix, windows, ca), b: node(prefix, windows, cb) };
  });
});

describe('RedisRateLimits: Redis specifics', () => {
  it('decides in the shared buckets while Redis answers, under <prefix>rl:<bucket>:<subject>', async () => {
    const prefix = freshPrefix();
    const client = connect();
    await client.ping();
    const limits = node(prefix, tight, client);
    expect(await limits.consumeRequest('usr_1', 'con_1')).toEqual({ allowed: true, source: 'shared' });
    expect(await redis.client.get(`${stateKeys(prefix).rateLimit('req:user')}:usr_1`)).toBe('1');
    // 100 a minute is leased 5 points at a time: one request took a lease of 5 from Redis.
    expect(await redis.client.get(`${stateKeys(prefix).rateLimit('req:conn')}:con_1`)).toBe('5');
  });

  it('leases points of a large request window: one Redis consume per lease, not per request', async () => {
    const prefix = freshPrefix();
    const client = connect();
    await client.ping();
    const limits = node(prefix, { requestPerUser: { points: 2000, durationSeconds: 60 }, requestPerConnection: { points: 4000, durationSeconds: 60 } }, client);
    for (let i = 0; i < 250; i += 1) expect(await limits.consumeRequest('usr_1', 'con_1')).toEqual({ allowed: true, source: 'shared' });
    const user = Number(await redis.client.get(`${stateKeys(prefix).rateLimit('req:user')}:usr_1`));
    const conn = Number(await redis.client.get(`${stateKeys(prefix).rateLimit('req:conn')}:con_1`));
    // Leases of 100 and 200 points: 250 requests took three and two of them (the last one early, in the background).
    expect(user % 100).toBe(0);
    expect(user).toBeGreaterThanOrEqual(300);
    expect(user).toBeLessThanOrEqual(400);
    expect(conn % 200).toBe(0);
    expect(conn).toBeGreaterThanOrEqual(400);
    expect(conn).toBeLessThanOrEqual(600);
  });

  it('never exceeds a leased window across nodes, and leaves at most a lease per node unused', async () => {
    const prefix = freshPrefix();
    const windows = { requestPerUser: { points: 200, durationSeconds: 60 }, requestPerConnection: { points: 100_000, durationSeconds: 60 } };
    const [ca, cb] = [connect(), connect()];
    await Promise.all([ca.ping(), cb.ping()]);
    // A generous latency bound: a slow Redis on a busy machine must not hand the decision to the
    // per-node fallback, which allows the whole window on each node (tested separately below).
    const [a, b] = [node(prefix, windows, ca, { timeoutMs: 10_000 }), node(prefix, windows, cb, { timeoutMs: 10_000 })];
    let allowed = 0;
    for (let i = 0; i < 400; i += 1) if ((await (i % 2 ? a : b).consumeRequest('usr_1', 'con_1')).allowed) allowed += 1;
    expect(allowed).toBeLessThanOrEqual(200);
    expect(allowed).toBeGreaterThanOrEqual(200 - 2 * 10);
    // Near the end of the window the nodes ask for single points: the last one refused names the user window.
    expect(await a.consumeRequest('usr_1', 'con_1')).toMatchObject({ allowed: false, scope: 'user', source: 'shared' });
  });

  it('never exceeds a leased window under concurrent requests on two nodes', async () => {
    const prefix = freshPrefix();
    const windows = { requestPerUser: { points: 100, durationSeconds: 60 }, requestPerConnection: { points: 100_000, durationSeconds: 60 } };
    const [ca, cb] = [connect(), connect()];
    await Promise.all([ca.ping(), cb.ping()]);
    // A generous latency bound: a slow Redis on a busy machine must not hand the decision to the
    // per-node fallback, which allows the whole window on each node (tested separately below).
    const [a, b] = [node(prefix, windows, ca, { timeoutMs: 10_000 }), node(prefix, windows, cb, { timeoutMs: 10_000 })];
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => (i % 2 ? a : b).consumeRequest('usr_1', 'con_1')));
    const allowed = results.filter((r) => r.allowed).length;
    expect(allowed).toBeLessThanOrEqual(100);
    expect(allowed).toBeGreaterThanOrEqual(100 - 2 * 5);
  });

  it('falls back to the per-node limiter at once when Redis is unreachable', async () => {
    const client = connect(`redis://127.0.0.1:${await freePort()}`);
    const timeoutMs = 50;
    const limits = node(freshPrefix(), tight, client, { timeoutMs });
    for (const expected of [true, true, false]) {
      const { value, elapsedMs } = await timed(() => limits.consumeRequest('usr_1', 'con_1'));
      expect(value).toMatchObject({ allowed: expected, source: 'local' });
      expect(elapsedMs).toBeLessThan(timeoutMs);
    }
  });

  it('decides locally within the latency bound when Redis hangs, then returns to Redis after the cool-down', async () => {
    const clock = createManualClock();
    const proxy = await startFaultProxy(redis.url);
    proxies.push(proxy);
    const client = connect(proxy.url);
    await client.ping();
    const { logger, lines } = createCaptureLogger('state-test');
    const timeoutMs = 50;
    const limits = node(freshPrefix(), tight, client, { timeoutMs, cooldownMs: 1000, clock: clock.now, logger });
    expect(await limits.consumeRequest('usr_1', 'con_1')).toMatchObject({ allowed: true, source: 'shared' });

    proxy.freeze();
    const hung = await timed(() => limits.consumeRequest('usr_1', 'con_1'));
    expect(hung.value).toMatchObject({ allowed: true, source: 'local' });
    // The bound is the point of the test: timeoutMs, plus an allowance for timer scheduling.
    expect(hung.elapsedMs).toBeLessThan(timeoutMs + 50);
    // Within the cool-down Redis is not even tried.
    const cooled = await timed(() => limits.consumeRequest('usr_1', 'con_1'));
    expect(cooled.value).toMatchObject({ allowed: true, source: 'local' });
    expect(cooled.elapsedMs).toBeLessThan(timeoutMs);
    expect(lines.filter((l) => l.includes('Redis unavailable; deciding locally.'))).toHaveLength(1);

    proxy.thaw();
    clock.advance(1000);
    // Two points were consumed in Redis (the first call and the timed-out one that landed later): the window is full there.
    expect(await limits.consumeRequest('usr_1', 'con_1')).toMatchObject({ allowed: false, scope: 'user', source: 'shared' });
    expect(lines.some((l) => l.includes('Redis answering again'))).toBe(true);
  });
});
