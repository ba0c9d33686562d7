import { createNullLogger, type Logger } from '@pa/kit';
import { systemClock, type Clock } from './clock';
import { RevocationMirror } from './revocation-mirror';
import {
  parseRevokeInput,
  type RevocationCheck,
  type RevocationHealth,
  type RevocationListener,
  type RevocationStore,
  type RevocationSubject,
  type RevokeInput,
} from './revocation-store';

/** Options of {@link MemoryRevocationStore}. */
export interface MemoryRevocationStoreOptions {
  clock?: Clock;
  logger?: Logger;
}

/**
 * Revocations held in this process only: the embedded single-node default
 * (no REDIS_URL). Same contract and TTL semantics as the Redis store; it is
 * never stale, since it is its own source of truth.
 */
export class MemoryRevocationStore implements RevocationStore {
  private readonly clock: Clock;
  private readonly mirror: RevocationMirror;

  constructor(options: MemoryRevocationStoreOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.mirror = new RevocationMirror(this.clock, options.logger ?? createNullLogger());
  }

  async revoke(input: RevokeInput): Promise<void> {
    const { kind, id, reason, ttlSeconds } = parseRevokeInput(input);
    const at = this.clock();
    this.mirror.apply({ kind, id, reason, at, expiresAt: at + Math.ceil(ttlSeconds * 1000) });
  }

  check(subject: RevocationSubject): RevocationCheck {
    const found = this.mirror.find(subject);
    return found ? { state: 'revoked', kind: found.kind, reason: found.reason } : { state: 'ok' };
  }

  onRevoked(listener: RevocationListener): () => void {
    return this.mirror.listen(listener);
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.mirror.clearListeners();
  }

  health(): RevocationHealth {
    return { connected: true, lastSyncAt: this.clock(), stale: false };
  }
}
