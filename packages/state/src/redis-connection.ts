import { Redis, type RedisOptions } from 'ioredis';
import { AppError, type Logger } from '@pa/kit';
import type { Clock } from './clock';

/**
 * Reconnect back-off: 100 ms doubling to a 3 s ceiling. ioredis keeps trying
 * for as long as the client is open; each attempt's failure is reported once
 * per outage by {@link watchConnection}.
 */
export const reconnectDelayMs = (attempt: number): number => Math.min(100 * 2 ** Math.min(attempt - 1, 5), 3000);

/**
 * Options for connections this package opens itself. The offline queue stays
 * on (so a control-plane `revoke` issued while connecting waits for the
 * connection), but the data path never uses it: every data-path call first
 * checks that the connection is `ready` (see {@link RedisGate}).
 */
export const ownedConnectionOptions: RedisOptions = {
  maxRetriesPerRequest: 1,
  retryStrategy: reconnectDelayMs,
  connectTimeout: 2000,
  // ioredis arms this timer on disconnect even for a socket that is already
  // closed (refused connection); a short one keeps shutdown prompt.
  disconnectTimeout: 200,
  enableAutoPipelining: false,
};

/** Opens a client to `url` with {@link ownedConnectionOptions}. */
export const openRedis = (url: string, override: RedisOptions = {}): Redis =>
  new Redis(url, { ...ownedConnectionOptions, ...override });

/**
 * Logs a connection's transitions (one warning when it is lost, one info line
 * when it is back) and keeps ioredis' `error` events from crashing the process.
 * Returns a function that removes the listeners.
 */
export const watchConnection = (client: Redis, logger: Logger, name: string): (() => void) => {
  let isDown = false;
  const onError = (err: Error): void => {
    if (!isDown) logger.warn('Redis connection failed.', { connection: name, err });
    isDown = true;
  };
  const onClose = (): void => {
    if (!isDown) logger.warn('Redis connection lost.', { connection: name });
    isDown = true;
  };
  const onReady = (): void => {
    if (isDown) logger.info('Redis connection restored.', { connection: name });
    isDown = false;
  };
  client.on('error', onError);
  client.on('close', onClose);
  client.on('ready', onReady);
  return () => {
    client.off('error', onError);
    client.off('close', onClose);
    client.off('ready', onReady);
  };
};

/**
 * Settles with `promise`, or rejects with DEPENDENCY_UNAVAILABLE after
 * `timeoutMs`. A late settlement of `promise` is absorbed (never unhandled).
 */
export const withTimeout = <T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new AppError('DEPENDENCY_UNAVAILABLE', { message: `Redis did not answer in time (${what}).`, meta: { timeoutMs } }));
    }, timeoutMs);
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

/**
 * Resolves once `client` is ready, starting a lazy client's connection;
 * rejects with DEPENDENCY_UNAVAILABLE after `timeoutMs`.
 */
export const whenReady = (client: Redis, timeoutMs: number): Promise<void> => {
  if (client.status === 'ready') return Promise.resolve();
  startConnecting(client);
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
    client.once('ready', onReady);
  });
  return withTimeout(ready, timeoutMs, 'connect').finally(() => client.off('ready', onReady));
};

/** Starts connecting a client created with `lazyConnect` that nothing has used yet (the data path never sends to a client that is not ready). */
export const startConnecting = (client: Redis): void => {
  if (client.status === 'wait') client.connect().catch(() => undefined); // failures surface as `error` events and reconnects
};

/** Options of {@link RedisGate}. */
export interface RedisGateOptions {
  /** Latency bound for one data-path operation; past it the caller decides locally. */
  timeoutMs: number;
  /** After a failure or timeout, how long to decide locally without trying Redis. */
  cooldownMs: number;
  clock: Clock;
  logger: Logger;
  /** Names the user of the gate in log lines (`rate-limits`, `concurrency`). */
  component: string;
}

/**
 * Guards data-path calls to Redis: a call is attempted only while the
 * connection is `ready` and no failure happened within `cooldownMs`; it is
 * abandoned after `timeoutMs`. Either way the caller gets a rejection at once
 * and falls back to its local state, so Redis latency never reaches the data
 * path. A small circuit breaker: under a hung Redis only one call per cooldown
 * pays the timeout.
 */
export class RedisGate {
  private cooldownUntil = 0;
  private isDegraded = false;

  constructor(
    readonly client: Redis,
    private readonly options: RedisGateOptions,
  ) {
    startConnecting(client);
  }

  /** Whether a call would be attempted now. */
  isUsable(): boolean {
    return this.client.status === 'ready' && this.options.clock() >= this.cooldownUntil;
  }

  /**
   * Runs `op` against Redis within the latency bound (or `timeoutMs` when
   * given). Rejects with DEPENDENCY_UNAVAILABLE at once when Redis is not
   * usable, and with the operation's error or a timeout otherwise.
   */
  async run<T>(what: string, op: (client: Redis) => Promise<T>, timeoutMs = this.options.timeoutMs): Promise<T> {
    if (!this.isUsable()) {
      throw new AppError('DEPENDENCY_UNAVAILABLE', { message: 'Redis is unavailable; deciding locally.' });
    }
    try {
      const value = await withTimeout(op(this.client), timeoutMs, what);
      this.markUp();
      return value;
    } catch (err) {
      this.markDown(err, what);
      throw err;
    }
  }

  private markUp(): void {
    if (this.isDegraded) this.options.logger.info('Redis answering again; shared limits restored.', { component: this.options.component });
    this.isDegraded = false;
  }

  private markDown(err: unknown, what: string): void {
    this.cooldownUntil = this.options.clock() + this.options.cooldownMs;
    if (!this.isDegraded) {
      this.options.logger.warn('Redis unavailable; deciding locally.', { component: this.options.component, operation: what, err });
    }
    this.isDegraded = true;
  }
}
