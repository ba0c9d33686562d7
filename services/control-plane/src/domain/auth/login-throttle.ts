import type Redis from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from '@pa/kit';

export interface ThrottleOptions {
  userFailures: number;
  addressFailures: number;
  windowSeconds: number;
  /** Shared state for every replica; in-process when absent. */
  redis?: Redis;
  keyPrefix?: string;
  logger: Logger;
}

export interface ThrottleVerdict {
  blocked: boolean;
  retryAfterSeconds: number;
}

/**
 * Counts failed logins per username and per source address (in Redis when
 * configured, so every replica shares them; a per-process limiter stands in
 * when Redis does not answer). A success clears the username's count.
 */
export class LoginThrottle {
  private readonly byUser: RateLimiterAbstract;
  private readonly byAddress: RateLimiterAbstract;
  private readonly fallbackUser: RateLimiterMemory;
  private readonly fallbackAddress: RateLimiterMemory;

  constructor(private readonly options: ThrottleOptions) {
    const prefix = options.keyPrefix ?? 'pa:';
    this.fallbackUser = new RateLimiterMemory({ points: options.userFailures, duration: options.windowSeconds });
    this.fallbackAddress = new RateLimiterMemory({ points: options.addressFailures, duration: options.windowSeconds });
    if (options.redis) {
      const common = { storeClient: options.redis, duration: options.windowSeconds, useRedisPackage: false, rejectIfRedisNotReady: true };
      this.byUser = new RateLimiterRedis({ ...common, points: options.userFailures, keyPrefix: `${prefix}login:user`, insuranceLimiter: this.fallbackUser });
      this.byAddress = new RateLimiterRedis({ ...common, points: options.addressFailures, keyPrefix: `${prefix}login:addr`, insuranceLimiter: this.fallbackAddress });
    } else {
      this.byUser = this.fallbackUser;
      this.byAddress = this.fallbackAddress;
    }
  }

  private async consumed(limiter: RateLimiterAbstract, fallback: RateLimiterMemory, key: string): Promise<RateLimiterRes | null> {
    try {
      return await limiter.get(key);
    } catch (err) {
      this.options.logger.warn('Login throttle store unavailable; using the local limiter.', { err });
      return fallback.get(key);
    }
  }

  async check(username: string, address: string): Promise<ThrottleVerdict> {
    const [u, a] = await Promise.all([
      this.consumed(this.byUser, this.fallbackUser, username.toLowerCase()),
      this.consumed(this.byAddress, this.fallbackAddress, address),
    ]);
    const over = (res: RateLimiterRes | null, points: number) => (res && res.consumedPoints >= points ? res.msBeforeNext : 0);
    const wait = Math.max(over(u, this.options.userFailures), over(a, this.options.addressFailures));
    return { blocked: wait > 0, retryAfterSeconds: Math.ceil(wait / 1000) };
  }

  async recordFailure(username: string, address: string): Promise<void> {
    const consume = async (limiter: RateLimiterAbstract, key: string) => {
      try {
        await limiter.consume(key);
      } catch (res) {
        if (!(res instanceof RateLimiterRes)) this.options.logger.warn('Login throttle could not count a failure.', { err: res });
      }
    };
    await Promise.all([consume(this.byUser, username.toLowerCase()), consume(this.byAddress, address)]);
  }

  async recordSuccess(username: string): Promise<void> {
    try {
      await this.byUser.delete(username.toLowerCase());
    } catch (err) {
      this.options.logger.warn('Login throttle could not be cleared.', { err });
    }
  }
}
