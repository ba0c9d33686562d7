import { createDecisionCache } from './decision-cache';

describe('decision cache', () => {
  test('evicts the least recently used entry beyond maxEntries', () => {
    const cache = createDecisionCache<string>({ maxEntries: 2 });
    cache.set('h', 'a', 'A', 1);
    cache.set('h', 'b', 'B', 1);
    expect(cache.get('h', 'a')).toBe('A'); // a is now the most recent
    cache.set('h', 'c', 'C', 1);
    expect([cache.get('h', 'a'), cache.get('h', 'b'), cache.get('h', 'c')]).toEqual(['A', undefined, 'C']);
    expect(cache.size).toBe(2);
  });

  test('keys on the policy hash as well as the text', () => {
    const cache = createDecisionCache<string>();
    cache.set('h1', 'SELECT 1', 'one', 0);
    expect(cache.get('h2', 'SELECT 1')).toBeUndefined();
    expect(cache.get('h1', 'SELECT 1')).toBe('one');
  });

  test('bounds the characters held and skips texts that are too long', () => {
    const cache = createDecisionCache<string>({ maxChars: 100, maxKeyChars: 50 });
    cache.set('h', 'x'.repeat(51), 'long', 0);
    expect(cache.size).toBe(0);
    for (let i = 0; i < 10; i += 1) cache.set('h', `${i}`.repeat(20), `v${i}`, 10);
    expect(cache.size).toBeLessThanOrEqual(3);
    expect(cache.get('h', '9'.repeat(20))).toBe('v9');
    expect(cache.get('h', '0'.repeat(20))).toBeUndefined();
  });
});
