/**
 * Keeps a grant fresh for as long as `pa connect` runs.
 *
 *   issue ──▶ wait until renew_at ──▶ RenewGrant ──ok──▶ (new grant) wait until its renew_at …
 *                                        │
 *                         retryable ─────┤ backoff 1 s, 2 s, 4 s … ≤ 30 s, until expires_at → ended: expired
 *                         refused   ─────┘ (revoked, disabled, lost access)                  → ended: revoked
 *   a grant that already reaches the session's absolute end is not renewed   → ended: session-ended at expiry
 *
 * `checkNow()` renews at once (a node said the grant is revoked): the control
 * plane either renews it (work goes on with the new grant) or refuses (ended).
 *
 * Time and timers are injected so the schedule is tested without sleeping.
 */

/** What the keeper needs to know about a grant. */
export interface KeptGrant {
  id: string;
  expiresAt: Date;
  renewAt: Date;
  sessionEndsAt: Date | null;
}

/** Why the keeper stopped on its own. */
export type GrantEnd<TGrant> =
  | { kind: 'revoked'; error: unknown; grant: TGrant }
  | { kind: 'expired'; error: unknown; grant: TGrant }
  | { kind: 'session-ended'; grant: TGrant };

/** setTimeout/clearTimeout, replaceable in tests. */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface GrantKeeperOptions<TGrant extends KeptGrant> {
  initial: TGrant;
  renew: (current: TGrant) => Promise<TGrant>;
  /** Whether a renewal failure may succeed if tried again. */
  isRetryable: (err: unknown) => boolean;
  onRenewed?: (grant: TGrant) => void;
  onRetry?: (err: unknown, delayMs: number) => void;
  onEnded: (end: GrantEnd<TGrant>) => void;
  now?: () => number;
  timers?: Timers;
  /** First retry delay (default 1 s), doubled up to `maxBackoffMs` (default 30 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Renews a grant at its `renewAt`, retrying with backoff, and reports how it ended. */
export class GrantKeeper<TGrant extends KeptGrant> {
  private grant: TGrant;
  private timer: unknown = null;
  private stopped = false;
  private renewing = false;
  private backoffMs: number;
  private readonly now: () => number;
  private readonly timers: Timers;

  constructor(private readonly options: GrantKeeperOptions<TGrant>) {
    this.grant = options.initial;
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? realTimers;
    this.backoffMs = options.initialBackoffMs ?? 1000;
  }

  /** The grant to use now. */
  get current(): TGrant {
    return this.grant;
  }

  /** Starts the schedule for the current grant. */
  start(): void {
    this.scheduleFor(this.grant);
  }

  /**
   * Renews now instead of at `renewAt` — when a node reports the grant
   * revoked, the control plane decides: a refusal ends the keeper ('revoked'),
   * a new grant replaces the current one. Nothing happens while a renewal is
   * already under way, or for a grant that is not renewed (session end).
   */
  checkNow(): void {
    if (this.stopped || this.renewing || this.reachesSessionEnd(this.grant)) return;
    this.at(this.now(), () => void this.attempt());
  }

  /** Stops renewing (no callback is called after this). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
  }

  private at(when: number, fn: () => void): void {
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = this.timers.set(() => {
      this.timer = null;
      if (!this.stopped) fn();
    }, Math.max(0, when - this.now()));
  }

  private reachesSessionEnd(grant: TGrant): boolean {
    return grant.sessionEndsAt !== null && grant.expiresAt.getTime() >= grant.sessionEndsAt.getTime() - 1000;
  }

  private scheduleFor(grant: TGrant): void {
    if (this.reachesSessionEnd(grant)) {
      this.at(grant.expiresAt.getTime(), () => this.end({ kind: 'session-ended', grant }));
      return;
    }
    // Never sooner than a second from now (a renew_at in the past must not spin),
    // never later than the expiry.
    const when = Math.min(grant.expiresAt.getTime(), Math.max(grant.renewAt.getTime(), this.now() + 1000));
    this.at(when, () => void this.attempt());
  }

  private end(end: GrantEnd<TGrant>): void {
    if (this.stopped) return;
    this.stop();
    this.options.onEnded(end);
  }

  private async attempt(): Promise<void> {
    const current = this.grant;
    let next: TGrant;
    this.renewing = true;
    try {
      next = await this.options.renew(current);
    } catch (err) {
      this.renewing = false;
      if (this.stopped) return;
      if (!this.options.isRetryable(err)) {
        this.end({ kind: 'revoked', error: err, grant: current });
        return;
      }
      const left = current.expiresAt.getTime() - this.now();
      if (left <= 0) {
        this.end({ kind: 'expired', error: err, grant: current });
        return;
      }
      const delay = Math.min(this.backoffMs, left);
      this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 30_000);
      this.options.onRetry?.(err, delay);
      this.at(this.now() + delay, () => void this.attempt());
      return;
    }
    this.renewing = false;
    if (this.stopped) return;
    this.grant = next;
    this.backoffMs = this.options.initialBackoffMs ?? 1000;
    this.options.onRenewed?.(next);
    this.scheduleFor(next);
  }
}
