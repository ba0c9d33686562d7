import type { Redis } from 'ioredis';
import { z } from 'zod';
import { AppError, createNullLogger, type Logger } from '@pa/kit';
import { systemClock, type Clock } from './clock';
import { stateKeys, type StateKeys } from './keys';
import { reconnectDelayMs, watchConnection, whenReady, withTimeout } from './redis-connection';
import { RevocationMirror } from './revocation-mirror';
import {
  parseRevokeInput,
  type Revocation,
  type RevocationCheck,
  type RevocationHealth,
  type RevocationListener,
  type RevocationStore,
  type RevocationSubject,
  type RevokeInput,
} from './revocation-store';

/** Options of {@link RedisRevocationStore}. */
export interface RedisRevocationStoreOptions {
  /** Command connection (not closed by the store; the subscriber connection is the store's own duplicate of it). */
  client: Redis;
  /** Prefix of every key and of the channel, e.g. `pa:`. */
  keyPrefix: string;
  logger?: Logger;
  clock?: Clock;
  /** Period of the full resync that catches missed messages. Default 10 s. */
  resyncIntervalMs?: number;
  /** How long after the last successful sync the mirror is still trusted. Default 30 s. */
  maxStalenessMs?: number;
  /** Bound on one resync and on one `revoke` round trip. Default 5 s. */
  syncTimeoutMs?: number;
}

/** Defaults of {@link RedisRevocationStoreOptions}. */
export const REVOCATION_DEFAULTS = { resyncIntervalMs: 10_000, maxStalenessMs: 30_000, syncTimeoutMs: 5_000 } as const;

// Stores the revocation and announces it in one atomic step. Never shortens a
// longer TTL already held (a user revoked for an hour stays revoked for the
// hour when a later, shorter revocation arrives); the TTL in effect is what the
// announcement carries. KEYS[1] key; ARGV value, ttl ms, channel, message head.
const REVOKE_LUA = `
local ttl = tonumber(ARGV[2])
local current = redis.call('PTTL', KEYS[1])
if current == -1 then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
elseif current > ttl then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  ttl = current
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
end
redis.call('PUBLISH', ARGV[3], ARGV[4] .. tostring(ttl) .. '}')
return ttl
`;

interface RevocationCommands {
  paRevoke(key: string, value: string, ttlMs: number, channel: string, messageHead: string): Promise<number>;
}

const kindSchema = z.enum(['grant', 'user', 'session']);
const valueSchema = z.object({ reason: z.string(), at: z.number() });
const messageSchema = z.object({ kind: kindSchema, id: z.string().min(1), reason: z.string(), at: z.number(), ttlMs: z.number().positive() });

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
};

/**
 * Revocations shared through Redis. Each is a key `<prefix>rev:<kind>:<id>`
 * with a TTL, announced on the channel `<prefix>revocations`. A second
 * connection in subscribe mode applies announcements to a local mirror within
 * milliseconds; a full SCAN resync at start, on every reconnect and every
 * `resyncIntervalMs` catches anything missed. `check` reads only the mirror.
 *
 * While Redis is unreachable the mirror keeps answering from the last known
 * state for `maxStalenessMs` after the last successful sync; past that, `check`
 * answers `unknown` for subjects not known revoked, so the caller refuses new
 * connections while live ones continue.
 */
export class RedisRevocationStore implements RevocationStore {
  private readonly client: Redis;
  private readonly keys: StateKeys;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly mirror: RevocationMirror;
  private readonly resyncIntervalMs: number;
  private readonly maxStalenessMs: number;
  private readonly syncTimeoutMs: number;
  private subscriber: Redis | null = null;
  private isSubscribed = false;
  private lastSyncAt: number | null = null;
  private wasStale = false;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<boolean> | null = null;
  private queued: Promise<boolean> | null = null;
  private readyWork: Promise<void> = Promise.resolve();
  private isClosed = false;
  private readonly cleanups: Array<() => void> = [];

  constructor(options: RedisRevocationStoreOptions) {
    if (!options.client) throw new TypeError('RedisRevocationStore needs a Redis client.');
    this.client = options.client;
    this.keys = stateKeys(options.keyPrefix);
    this.logger = options.logger ?? createNullLogger();
    this.clock = options.clock ?? systemClock;
    this.mirror = new RevocationMirror(this.clock, this.logger);
    this.resyncIntervalMs = options.resyncIntervalMs ?? REVOCATION_DEFAULTS.resyncIntervalMs;
    this.maxStalenessMs = options.maxStalenessMs ?? REVOCATION_DEFAULTS.maxStalenessMs;
    this.syncTimeoutMs = options.syncTimeoutMs ?? REVOCATION_DEFAULTS.syncTimeoutMs;
    if (!('paRevoke' in this.client)) this.client.defineCommand('paRevoke', { numberOfKeys: 1, lua: REVOKE_LUA });
  }

  async revoke(input: RevokeInput): Promise<void> {
    const { kind, id, reason, ttlSeconds } = parseRevokeInput(input);
    const at = this.clock();
    const ttlMs = Math.ceil(ttlSeconds * 1000);
    // Safe direction first: this process honours the revocation even if Redis fails below.
    this.mirror.apply({ kind, id, reason, at, expiresAt: at + ttlMs });
    const value = JSON.stringify({ reason, at });
    const messageHead = `${JSON.stringify({ kind, id, reason, at }).slice(0, -1)},"ttlMs":`;
    const commands = this.client as unknown as RevocationCommands;
    try {
      await withTimeout(commands.paRevoke(this.keys.revocation(kind, id), value, ttlMs, this.keys.revocationChannel, messageHead), this.syncTimeoutMs, 'revoke');
    } catch (err) {
      throw new AppError('DEPENDENCY_UNAVAILABLE', { message: 'The revocation could not be stored; try again.', cause: err });
    }
    this.logger.info('Revocation published.', { kind, id, reason, ttlMs });
  }

  check(subject: RevocationSubject): RevocationCheck {
    const found = this.mirror.find(subject);
    if (found) return { state: 'revoked', kind: found.kind, reason: found.reason };
    if (this.isStale()) {
      if (!this.wasStale) this.logger.warn('Revocation state is stale; new connections are refused.', { lastSyncAt: this.lastSyncAt, maxStalenessMs: this.maxStalenessMs });
      this.wasStale = true;
      return { state: 'unknown' };
    }
    this.wasStale = false;
    return { state: 'ok' };
  }

  onRevoked(listener: RevocationListener): () => void {
    return this.mirror.listen(listener);
  }

  async start(): Promise<void> {
    if (this.subscriber || this.isClosed) return;
    const subscriber = this.client.duplicate({
      lazyConnect: true,
      autoResubscribe: false, // we subscribe ourselves on every `ready`, then resync
      maxRetriesPerRequest: 1,
      retryStrategy: reconnectDelayMs,
      disconnectTimeout: 200,
    });
    this.subscriber = subscriber;
    this.cleanups.push(watchConnection(subscriber, this.logger, 'revocations'));
    subscriber.on('message', (channel: string, message: string) => this.onMessage(channel, message));
    subscriber.on('ready', () => {
      this.readyWork = this.subscribeAndSync();
    });
    subscriber.on('close', () => {
      this.isSubscribed = false;
    });
    const onClientReady = (): void => {
      void this.resync();
    };
    this.client.on('ready', onClientReady);
    this.cleanups.push(() => this.client.off('ready', onClientReady));
    this.timer = setInterval(() => void this.resync(), this.resyncIntervalMs);
    this.timer.unref();
    // Connect the subscriber now whatever happens below: if Redis is down, ioredis keeps retrying it.
    const isSubscriberUp = subscriber.connect().then(
      () => true,
      () => false,
    );
    try {
      await whenReady(this.client, this.syncTimeoutMs);
      if (!(await isSubscriberUp)) throw new AppError('DEPENDENCY_UNAVAILABLE', { message: 'The revocation subscriber could not connect.' });
      await withTimeout(this.readyWork, this.syncTimeoutMs, 'first revocation sync');
      // The subscriber may have been ready before the command connection, so its resync may have failed.
      if (this.lastSyncAt === null && !(await this.resync())) throw new AppError('DEPENDENCY_UNAVAILABLE', { message: 'The first revocation sync failed.' });
    } catch (err) {
      this.logger.warn('Revocation store started without Redis; retrying in the background.', { err });
    }
  }

  async close(): Promise<void> {
    this.isClosed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.subscriber?.disconnect();
    this.isSubscribed = false;
    this.mirror.clearListeners();
  }

  health(): RevocationHealth {
    const connected = this.isSubscribed && this.subscriber?.status === 'ready' && this.client.status === 'ready';
    return { connected, lastSyncAt: this.lastSyncAt, stale: this.isStale() };
  }

  /**
   * Runs a full resync now (after any running one); resolves whether it
   * succeeded. Never rejects: a failure is logged and the next attempt comes
   * with the timer or the next reconnect.
   */
  resync(): Promise<boolean> {
    if (!this.running) {
      this.running = this.syncOnce().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    this.queued ??= this.running.then(() => {
      this.queued = null;
      return this.resync();
    });
    return this.queued;
  }

  private isStale(): boolean {
    return this.lastSyncAt === null || this.clock() - this.lastSyncAt > this.maxStalenessMs;
  }

  private async subscribeAndSync(): Promise<void> {
    const subscriber = this.subscriber;
    if (!subscriber || this.isClosed) return;
    try {
      await withTimeout(subscriber.subscribe(this.keys.revocationChannel), this.syncTimeoutMs, 'subscribe');
      this.isSubscribed = true;
    } catch (err) {
      this.logger.warn('Subscribing to revocations failed.', { err });
      return;
    }
    // Subscribed first, then scanned: nothing written after the scan can be missed.
    await this.resync();
  }

  private async syncOnce(): Promise<boolean> {
    if (this.isClosed) return false;
    if (this.client.status !== 'ready') return false;
    const startedAt = this.clock();
    try {
      const found = await withTimeout(this.scanAll(), this.syncTimeoutMs, 'revocation resync');
      for (const revocation of found) this.mirror.apply(revocation);
      this.mirror.prune();
      this.lastSyncAt = Math.max(this.lastSyncAt ?? 0, startedAt);
      this.logger.debug('Revocations synced.', { count: found.length });
      return true;
    } catch (err) {
      this.logger.warn('Revocation resync failed.', { err });
      return false;
    }
  }

  private async scanAll(): Promise<Revocation[]> {
    const out: Revocation[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.client.scan(cursor, 'MATCH', this.keys.revocationPattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      const pipeline = this.client.pipeline();
      for (const key of keys) pipeline.get(key).pttl(key);
      const results = (await pipeline.exec()) ?? [];
      const now = this.clock();
      keys.forEach((key, i) => {
        const [valueErr, value] = results[2 * i] ?? [];
        const [ttlErr, ttl] = results[2 * i + 1] ?? [];
        if (valueErr || ttlErr) throw valueErr ?? ttlErr;
        const revocation = this.parseKey(key, value, ttl, now);
        if (revocation) out.push(revocation);
      });
    } while (cursor !== '0');
    return out;
  }

  private parseKey(key: string, value: unknown, ttl: unknown, now: number): Revocation | null {
    if (typeof value !== 'string' || typeof ttl !== 'number' || ttl === -2) return null; // gone since the SCAN
    const rest = key.slice(this.keys.revocationKeyStart.length);
    const colon = rest.indexOf(':');
    const kind = kindSchema.safeParse(rest.slice(0, colon));
    const id = rest.slice(colon + 1);
    if (colon < 0 || !kind.success || id === '') {
      this.logger.warn('Ignoring a malformed revocation key.', { key });
      return null;
    }
    // A key without TTL (written by hand) is held until a resync no longer finds it.
    const expiresAt = ttl === -1 ? now + this.maxStalenessMs + this.resyncIntervalMs : now + ttl;
    const parsed = valueSchema.safeParse(parseJson(value));
    if (!parsed.success) {
      // Fail closed: the key exists, so the subject is revoked even if the value is unreadable.
      this.logger.warn('Revocation value unreadable; treating the subject as revoked.', { key });
      return { kind: kind.data, id, reason: 'unreadable', at: 0, expiresAt };
    }
    return { kind: kind.data, id, reason: parsed.data.reason, at: parsed.data.at, expiresAt };
  }

  private onMessage(channel: string, message: string): void {
    if (channel !== this.keys.revocationChannel) return;
    const parsed = messageSchema.safeParse(parseJson(message));
    if (!parsed.success) {
      this.logger.warn('Ignoring a malformed revocation message; the next resync will pick the key up.', { channel });
      return;
    }
    const { kind, id, reason, at, ttlMs } = parsed.data;
    this.mirror.apply({ kind, id, reason, at, expiresAt: this.clock() + ttlMs });
  }
}
