/** Options of {@link createDecisionCache}. */
export interface DecisionCacheOptions {
  /** Most entries kept (default 10 000). */
  readonly maxEntries?: number;
  /** Most characters of keys and statement texts kept, in total (default 16 Mi). */
  readonly maxChars?: number;
  /** Longest query text cached; longer ones are evaluated every time (default 64 Ki characters). */
  readonly maxKeyChars?: number;
}

/** A bounded LRU of decisions keyed by (policy hash, SQL text). */
export interface DecisionCache<T> {
  get(policyHash: string, sql: string): T | undefined;
  set(policyHash: string, sql: string, value: T, weight: number): void;
  /** Entries held. */
  readonly size: number;
  clear(): void;
}

/** Creates a bounded LRU decision cache (a Map in insertion order: oldest first). */
export const createDecisionCache = <T>(options: DecisionCacheOptions = {}): DecisionCache<T> => {
  const maxEntries = options.maxEntries ?? 10_000;
  const maxChars = options.maxChars ?? 16 * 1024 * 1024;
  const maxKeyChars = options.maxKeyChars ?? 64 * 1024;
  const entries = new Map<string, { value: T; weight: number }>();
  let chars = 0;
  const keyOf = (hash: string, sql: string): string => `${hash}\u0000${sql}`;
  return {
    get: (hash, sql) => {
      if (sql.length > maxKeyChars) return undefined;
      const key = keyOf(hash, sql);
      const hit = entries.get(key);
      if (hit === undefined) return undefined;
      entries.delete(key);
      entries.set(key, hit);
      return hit.value;
    },
    set: (hash, sql, value, weight) => {
      if (sql.length > maxKeyChars || maxEntries <= 0) return;
      const key = keyOf(hash, sql);
      const old = entries.get(key);
      if (old) {
        chars -= old.weight;
        entries.delete(key);
      }
      const w = key.length + weight;
      entries.set(key, { value, weight: w });
      chars += w;
      for (const [k, e] of entries) {
        if (entries.size <= maxEntries && chars <= maxChars) break;
        entries.delete(k);
        chars -= e.weight;
      }
    },
    get size() {
      return entries.size;
    },
    clear: () => {
      entries.clear();
      chars = 0;
    },
  };
};
