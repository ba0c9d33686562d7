import type { Logger } from '@pa/kit';
import type { Clock } from './clock';
import { REVOCATION_KINDS, type Revocation, type RevocationKind, type RevocationListener, type RevocationSubject } from './revocation-store';

const entryKey = (kind: RevocationKind, id: string): string => `${kind}:${id}`;

/**
 * The in-process copy of every live revocation, shared by both store
 * implementations. Entries expire by the injected clock. The mirror only ever
 * grows by merging (a revocation is never undone), so a resync that misses a
 * key — Redis restarted empty, say — cannot un-revoke anything still known.
 */
export class RevocationMirror {
  private readonly entries = new Map<string, Revocation>();
  private readonly listeners = new Set<RevocationListener>();
  private nextPruneAt = 0;

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /**
   * Merges `revocation`; notifies listeners when it is new (not the same
   * issuance already held). An entry already held keeps the later expiry.
   */
  apply(revocation: Revocation): void {
    const now = this.clock();
    if (revocation.expiresAt <= now) return;
    const key = entryKey(revocation.kind, revocation.id);
    const held = this.entries.get(key);
    const isLive = held !== undefined && held.expiresAt > now;
    if (isLive && held.at === revocation.at) {
      held.expiresAt = Math.max(held.expiresAt, revocation.expiresAt);
      return;
    }
    this.entries.set(key, { ...revocation, expiresAt: Math.max(revocation.expiresAt, isLive ? held.expiresAt : 0) });
    this.maybePrune(now);
    for (const listener of this.listeners) {
      try {
        listener(revocation);
      } catch (err) {
        this.logger.error('Revocation listener failed.', { kind: revocation.kind, id: revocation.id, err });
      }
    }
  }

  /** The live revocation that covers `subject`, if any (grant, then session, then user). */
  find(subject: RevocationSubject): Revocation | undefined {
    const now = this.clock();
    for (const kind of REVOCATION_KINDS) {
      const id = kind === 'grant' ? subject.grantId : kind === 'user' ? subject.userId : subject.sessionId;
      if (id === undefined) continue;
      const key = entryKey(kind, id);
      const held = this.entries.get(key);
      if (held === undefined) continue;
      if (held.expiresAt > now) return held;
      this.entries.delete(key);
    }
    return undefined;
  }

  /** Registers a listener; returns its remover. */
  listen(listener: RevocationListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Drops every expired entry. */
  prune(): void {
    const now = this.clock();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }

  /** Number of entries held (expired ones included until pruned). */
  get size(): number {
    return this.entries.size;
  }

  /** Forgets every listener. */
  clearListeners(): void {
    this.listeners.clear();
  }

  // Expired entries are also dropped lazily by `find`; a full sweep at most once a minute bounds memory.
  private maybePrune(now: number): void {
    if (now < this.nextPruneAt) return;
    this.nextPruneAt = now + 60_000;
    this.prune();
  }
}
