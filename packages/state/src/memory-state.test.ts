import { MemoryConcurrency } from './memory-concurrency';
import { MemoryRateLimits } from './rate-limits';
import { MemoryRevocationStore } from './memory-revocation-store';
import type { Concurrency } from './concurrency';
import type { RevocationStore } from './revocation-store';
import { describeConcurrencyContract } from './testing/concurrency.contract';
import { describeRateLimitsContract } from './testing/rate-limits.contract';
import { describeRevocationStoreContract } from './testing/revocation-store.contract';

// The in-process implementations run the same behavioural tables as the Redis
// ones (see *.int.test.ts). The embedded default is one node, so "both nodes"
// are the same instance here.

describe('MemoryRevocationStore', () => {
  const open: RevocationStore[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });
  describeRevocationStoreContract(async (clock) => {
    const store = new MemoryRevocationStore({ clock });
    open.push(store);
    await store.start();
    return { a: store, b: store };
  });
});

describe('MemoryRateLimits', () => {
  describeRateLimitsContract(async (windows) => {
    const limits = new MemoryRateLimits({ windows });
    return { a: limits, b: limits };
  });
});

describe('MemoryConcurrency', () => {
  const open: Concurrency[] = [];
  afterEach(async () => {
    for (const c of open.splice(0)) await c.close();
  });
  describeConcurrencyContract(async (clock) => {
    const concurrency = new MemoryConcurrency({ clock });
    open.push(concurrency);
    return { a: concurrency, b: concurrency };
  });
});
