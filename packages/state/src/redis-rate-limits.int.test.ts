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
    expect(await redis.client.get(`${stateKeys(prefix).rateLimit('req:conn')}:con_1`)).toBe('1');
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
