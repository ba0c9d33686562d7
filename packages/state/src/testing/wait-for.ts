/**
 * Resolves once `condition` holds, checking it every few milliseconds; rejects
 * after `timeoutMs` naming `what`. For states with no event to await (a
 * connection's status, a key vanishing when Redis expires it).
 */
export const waitFor = async (what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

/** Milliseconds `fn` took to settle, and its value. */
export const timed = async <T>(fn: () => Promise<T>): Promise<{ value: T; elapsedMs: number }> => {
  const started = performance.now();
  const value = await fn();
  return { value, elapsedMs: performance.now() - started };
};

/** Settles with `promise`, or rejects when it takes longer than `ms` (a bound the behaviour must meet, not a sleep). */
export const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms.`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
