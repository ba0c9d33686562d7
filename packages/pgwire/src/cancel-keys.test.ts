import { InMemoryCancelKeyStore } from './cancel-keys';

const target = { host: '10.0.0.5', port: 5432, backendKey: { processId: 4711, secretKey: Buffer.from([9, 9, 9, 9]) } };

describe('InMemoryCancelKeyStore', () => {
  it('issues random proxy keys that resolve to the backend key, and only with the right secret', async () => {
    const store = new InMemoryCancelKeyStore();
    const a = await store.issue(target);
    const b = await store.issue(target);
    expect(a.processId).not.toBe(b.processId);
    expect(a.processId).not.toBe(4711);
    expect(a.secretKey).toHaveLength(4);
    expect(await store.resolve(a.processId, a.secretKey)).toBe(target);
    const wrong = Buffer.from(a.secretKey);
    wrong[0] = (wrong[0] as number) ^ 1;
    expect(await store.resolve(a.processId, wrong)).toBeNull();
    expect(await store.resolve(a.processId, Buffer.concat([a.secretKey, Buffer.from([0])]))).toBeNull();
    expect(await store.resolve(4711, target.backendKey.secretKey)).toBeNull();
  });

  it('forgets revoked keys and caps live entries', async () => {
    const store = new InMemoryCancelKeyStore({ maxEntries: 2, secretLength: 32 });
    const a = await store.issue(target);
    expect(a.secretKey).toHaveLength(32);
    await store.issue(target);
    await expect(store.issue(target)).rejects.toThrow(RangeError);
    await store.revoke(a.processId);
    expect(await store.resolve(a.processId, a.secretKey)).toBeNull();
    expect(store.size).toBe(1);
    // Mutating the returned key does not change the stored secret.
    const c = await store.issue(target);
    const copy = Buffer.from(c.secretKey);
    c.secretKey.fill(0);
    expect(await store.resolve(c.processId, copy)).toBe(target);
  });
});
