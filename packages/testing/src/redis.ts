import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';

/** URL of the test Redis server (set by scripts/test.mjs). */
export const testRedisUrl = (): string => process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestRedis {
  readonly url: string;
  /** Key prefix owned by this test file (ends with `:`). */
  readonly prefix: string;
  readonly client: Redis;
  /** Deletes every key under the prefix and closes the client. */
  close(): Promise<void>;
}

/** A Redis connection and a key prefix of its own for one test file. */
export const createTestRedis = async (): Promise<TestRedis> => {
  const url = testRedisUrl();
  const prefix = `patest:${randomBytes(5).toString('hex')}:`;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  return {
    url,
    prefix,
    client,
    close: async () => {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        if (keys.length > 0) await client.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      client.disconnect();
    },
  };
};
