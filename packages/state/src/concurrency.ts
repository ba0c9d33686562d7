import { z } from 'zod';
import { AppError, newId, zodProblems, type Logger } from '@pa/kit';
import type { Clock } from './clock';
import type { DecisionSource } from './rate-limits';

/** Which cap refused. */
export type ConcurrencyScope = 'grant' | 'user';

/** Input of {@link Concurrency.acquire}. */
export interface AcquireRequest {
  grantId: string;
  userId: string;
  /** Live connections allowed per grant (from the grant's session limits). */
  maxPerGrant: number;
  /** Live connections allowed per user, across grants and nodes. */
  maxPerUser: number;
  /** How long the slot is held without renewal. Default 30 s; renewed every leaseMs/3 unless `autoRenew` is false. */
  leaseMs?: number;
  /** Renew on an internal timer (default true). With false the holder calls `renew()` itself. */
  autoRenew?: boolean;
}

/** A held slot. Release it when the connection ends; an unrenewed lease expires on its own. */
export interface Lease {
  readonly id: string;
  readonly grantId: string;
  readonly userId: string;
  /** Current expiry (ms, the store's clock). */
  readonly expiresAt: number;
  /**
   * Extends the lease by `leaseMs` from now. Resolves false when the slot was
   * lost (it expired, was reclaimed and the cap is now full) or the lease was
   * released; a lease that expired while its cap still had room is reinstated.
   */
  renew(): Promise<boolean>;
  /** Frees the slot; idempotent. */
  release(): Promise<void>;
}

/** Answer of {@link Concurrency.acquire}. */
export type AcquireResult = { ok: true; lease: Lease; source: DecisionSource } | { ok: false; scope: ConcurrencyScope; source: DecisionSource };

/** Concurrency caps on live connections, per grant and per user. */
export interface Concurrency {
  acquire(request: AcquireRequest): Promise<AcquireResult>;
  /** Stops renewal timers and releases every lease still held (best effort). */
  close(): Promise<void>;
}

/** Default lease length. */
export const DEFAULT_LEASE_MS = 30_000;

const acquireSchema = z.object({
  grantId: z.string().min(1).max(256),
  userId: z.string().min(1).max(256),
  maxPerGrant: z.number().int().min(0),
  maxPerUser: z.number().int().min(0),
  leaseMs: z.number().int().min(100).max(3_600_000).optional(),
  autoRenew: z.boolean().optional(),
});

/** A validated request with defaults applied. */
export type ParsedAcquire = Required<AcquireRequest>;

/** Validates an {@link AcquireRequest}; throws VALIDATION_FAILED. */
export const parseAcquire = (request: AcquireRequest): ParsedAcquire => {
  const parsed = acquireSchema.safeParse(request);
  if (!parsed.success) throw new AppError('VALIDATION_FAILED', { details: zodProblems(parsed.error) });
  return { ...parsed.data, leaseMs: parsed.data.leaseMs ?? DEFAULT_LEASE_MS, autoRenew: parsed.data.autoRenew ?? true };
};

/**
 * Live leases counted in this process: the whole truth for the memory
 * implementation, this node's own leases for the Redis one (used alone while
 * Redis is unreachable). Same rules as the Redis script: drop expired members,
 * count, add — a member already present is not counted twice.
 */
export class LeaseTable {
  private readonly byGrant = new Map<string, Map<string, number>>();
  private readonly byUser = new Map<string, Map<string, number>>();

  constructor(private readonly clock: Clock) {}

  /** Adds or extends lease `id` unless a cap is full; returns the refusing scope, or null when held. */
  tryHold(id: string, request: ParsedAcquire, expiresAt: number): ConcurrencyScope | null {
    const grant = this.live(this.byGrant, request.grantId);
    const user = this.live(this.byUser, request.userId);
    if (!grant.has(id) && grant.size >= request.maxPerGrant) return 'grant';
    if (!user.has(id) && user.size >= request.maxPerUser) return 'user';
    grant.set(id, expiresAt);
    user.set(id, expiresAt);
    return null;
  }

  /** Records lease `id` without checking caps (the shared store already granted it). */
  hold(id: string, grantId: string, userId: string, expiresAt: number): void {
    this.live(this.byGrant, grantId).set(id, expiresAt);
    this.live(this.byUser, userId).set(id, expiresAt);
  }

  remove(id: string, grantId: string, userId: string): void {
    for (const [sets, key] of [[this.byGrant, grantId], [this.byUser, userId]] as const) {
      const set = sets.get(key);
      set?.delete(id);
      if (set?.size === 0) sets.delete(key);
    }
  }

  /** Live leases of a grant (for tests and metrics). */
  countGrant(grantId: string): number {
    return this.live(this.byGrant, grantId).size;
  }

  private live(sets: Map<string, Map<string, number>>, key: string): Map<string, number> {
    let set = sets.get(key);
    if (!set) {
      set = new Map();
      sets.set(key, set);
    }
    const now = this.clock();
    for (const [id, expiresAt] of set) if (expiresAt <= now) set.delete(id);
    return set;
  }
}

/** What a lease asks of the implementation that issued it. */
export interface LeaseBackend {
  renew(lease: LeaseHandle): Promise<boolean>;
  release(lease: LeaseHandle): Promise<void>;
}

/** The {@link Lease} both implementations hand out. */
export class LeaseHandle implements Lease {
  readonly id: string;
  expiresAt: number;
  isReleased = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly request: ParsedAcquire,
    private readonly backend: LeaseBackend,
    private readonly clock: Clock,
    private readonly logger: Logger,
    id?: string,
  ) {
    this.id = id ?? newId('lse');
    this.expiresAt = clock() + request.leaseMs;
  }

  get grantId(): string {
    return this.request.grantId;
  }

  get userId(): string {
    return this.request.userId;
  }

  /** Expiry a renewal made now would set. */
  nextExpiry(): number {
    return this.clock() + this.request.leaseMs;
  }

  /** Starts the renewal timer (leaseMs/3) when the request asked for it. */
  startRenewing(): void {
    if (!this.request.autoRenew || this.timer) return;
    this.timer = setInterval(() => {
      void this.renew().then((held) => {
        if (!held && !this.isReleased) this.logger.warn('Concurrency lease lost.', { leaseId: this.id, grantId: this.grantId, userId: this.userId });
      });
    }, Math.max(1, Math.floor(this.request.leaseMs / 3)));
    this.timer.unref();
  }

  async renew(): Promise<boolean> {
    if (this.isReleased) return false;
    return this.backend.renew(this);
  }

  async release(): Promise<void> {
    if (this.isReleased) return;
    this.isReleased = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.backend.release(this);
  }
}
