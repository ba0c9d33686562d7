import { createNullLogger, type Logger } from '@pa/kit';
import type { AuditEvent } from './audit-event';
import type { AuditSpoolReader, SpooledEvent } from './audit-spool';
import { systemTimers, type AuditTimers } from './timers';

/**
 * Carries a batch of events to the control plane (NodeService.IngestAudit).
 * Resolves with the ids the control plane has stored or will never store:
 * STORED, DUPLICATE and REJECTED acks all count (a rejected event is logged by
 * the adapter and dropped, as the contract says). Rejects when the call as a
 * whole failed (unreachable, timeout, transient error): the whole batch is
 * retried later. Ids not in the batch are ignored.
 */
export interface AuditTransport {
  send(events: AuditEvent[]): Promise<{ acked: string[] }>;
  /**
   * The same, with events as spooled (their stored JSON, not decoded). When a
   * transport has it the shipper uses it instead of `send`: the node's gRPC
   * transport, which passes the JSON through (IngestAuditRequest.spooled_events).
   */
  sendSpooled?(events: SpooledEvent[]): Promise<{ acked: string[] }>;
}

/** Defaults of {@link AuditShipperOptions}. */
export const AUDIT_SHIPPER_DEFAULTS = {
  batchSize: 256,
  initialBackoffMs: 250,
  maxBackoffMs: 30_000,
  backoffMultiplier: 2,
  sendTimeoutMs: 15_000,
} as const;

/** The most events IngestAuditRequest carries. */
export const MAX_AUDIT_BATCH = 500;

/** Configuration and dependencies of an {@link AuditShipper}. */
export interface AuditShipperOptions {
  spool: AuditSpoolReader;
  transport: AuditTransport;
  /** Events per send, at most {@link MAX_AUDIT_BATCH}. */
  batchSize?: number;
  /** First retry delay after a failure; doubles (by `backoffMultiplier`) up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  backoffMultiplier?: number;
  /** A send that has not settled by then counts as failed (its late answer is ignored). */
  sendTimeoutMs?: number;
  /** Uniform random number in [0, 1), for jitter. */
  random?: () => number;
  timers?: AuditTimers;
  logger?: Logger;
}

/** Counters of a shipper, for metrics and health. */
export interface AuditShipperStats {
  /** Events acknowledged by the control plane. */
  readonly shippedEvents: number;
  /** Sends acknowledged with at least one event. */
  readonly batches: number;
  /** Failed attempts (transport errors, timeouts, reads that failed, batches acked with nothing). */
  readonly failures: number;
  /** Failures since the last success; 0 when healthy. */
  readonly consecutiveFailures: number;
  /** Clock time of the last acknowledged send. */
  readonly lastShippedAt: number | undefined;
  /** Durable events waiting in the spool. */
  readonly pendingEvents: number;
  readonly pendingBytes: number;
  readonly isRunning: boolean;
}

/** What {@link AuditShipper.flush} achieved by its deadline. */
export interface AuditFlushResult {
  /** True when every accepted event was acknowledged. */
  readonly drained: boolean;
  /** Events still waiting (durable or not yet durable); they ship after the next start. */
  readonly pendingEvents: number;
}

class StoppedError extends Error {
  constructor() {
    super('The audit shipper was stopped.');
    this.name = 'StoppedError';
  }
}

const positive = (name: string, value: number): number => {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`AuditShipper option ${name} must be a non-negative number.`);
  return value;
};

/**
 * Ships spooled audit events to the control plane, one batch in flight at a
 * time and oldest first, so events reach the control plane in spool order
 * (a partial acknowledgement lets the acknowledged ones through and resends the
 * rest next). Retries failures with capped exponential backoff and jitter; wakes
 * as soon as new events are durable. At least once: an event leaves the spool
 * only when acknowledged, and ingestion by id makes repeats harmless.
 */
export class AuditShipper {
  private readonly spool: AuditSpoolReader;
  private readonly transport: AuditTransport;
  private readonly batchSize: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly multiplier: number;
  private readonly sendTimeoutMs: number;
  private readonly random: () => number;
  private readonly timers: AuditTimers;
  private readonly logger: Logger;

  private loop: Promise<void> | undefined;
  private isStopping = false;
  private unsubscribe: (() => void) | undefined;

  private hasWork = false;
  private workWaiter: (() => void) | undefined;
  private sleeping: { handle: unknown; wake: () => void } | undefined;
  private abortSend: (() => void) | undefined;
  private drainWaiters: (() => void)[] = [];

  private shipped = 0;
  private batches = 0;
  private failures = 0;
  private consecutiveFailures = 0;
  private lastShippedAt: number | undefined;

  constructor(options: AuditShipperOptions) {
    if (options.spool === undefined) throw new TypeError('AuditShipper needs a spool.');
    if (options.transport === undefined) throw new TypeError('AuditShipper needs a transport.');
    const d = AUDIT_SHIPPER_DEFAULTS;
    this.spool = options.spool;
    this.transport = options.transport;
    this.batchSize = Math.min(MAX_AUDIT_BATCH, Math.max(1, Math.floor(positive('batchSize', options.batchSize ?? d.batchSize))));
    this.initialBackoffMs = positive('initialBackoffMs', options.initialBackoffMs ?? d.initialBackoffMs);
    this.maxBackoffMs = Math.max(this.initialBackoffMs, positive('maxBackoffMs', options.maxBackoffMs ?? d.maxBackoffMs));
    this.multiplier = Math.max(1, positive('backoffMultiplier', options.backoffMultiplier ?? d.backoffMultiplier));
    this.sendTimeoutMs = positive('sendTimeoutMs', options.sendTimeoutMs ?? d.sendTimeoutMs);
    this.random = options.random ?? Math.random;
    this.timers = options.timers ?? systemTimers;
    this.logger = (options.logger ?? createNullLogger()).child({ component: 'audit-shipper' });
  }

  /** Starts the shipping loop (idempotent; a stopped shipper stays stopped). */
  start(): void {
    if (this.loop !== undefined || this.isStopping) return;
    this.unsubscribe = this.spool.onDurable(() => this.notifyWork());
    this.loop = this.run().catch((err: unknown) => {
      this.logger.error('Audit shipper stopped unexpectedly.', { error: err });
    });
  }

  /**
   * For graceful shutdown: commits what the spool has queued, cuts short any
   * backoff wait, and ships until the spool is empty or `deadlineMs`
   * milliseconds have passed, whichever is first. Starts the loop if needed and
   * leaves it running; call {@link AuditShipper.stop} next. Never rejects.
   */
  async flush(deadlineMs: number): Promise<AuditFlushResult> {
    if (!this.isStopping) {
      this.start();
      this.wakeSleeper();
      const drained = new Promise<void>((resolve) => this.drainWaiters.push(resolve));
      this.notifyWork();
      void this.spool.settle().catch(() => undefined);
      let handle: unknown;
      const deadline = new Promise<void>((resolve) => {
        handle = this.timers.setTimeout(resolve, Math.max(0, deadlineMs));
      });
      await Promise.race([drained, deadline]);
      this.timers.clearTimeout(handle);
    }
    const stats = this.spool.stats();
    const pendingEvents = stats.pendingEvents + stats.queuedEvents;
    return { drained: pendingEvents === 0, pendingEvents };
  }

  /**
   * Stops the loop: abandons a send in flight (its answer is ignored; the events
   * stay in the spool) and any wait, and resolves when the loop has exited.
   */
  async stop(): Promise<void> {
    this.isStopping = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.abortSend?.();
    this.wakeSleeper();
    this.notifyWork();
    await this.loop;
    this.resolveDrainWaiters();
  }

  /** Current counters. */
  stats(): AuditShipperStats {
    const spool = this.spool.stats();
    return {
      shippedEvents: this.shipped,
      batches: this.batches,
      failures: this.failures,
      consecutiveFailures: this.consecutiveFailures,
      lastShippedAt: this.lastShippedAt,
      pendingEvents: spool.pendingEvents,
      pendingBytes: spool.pendingBytes,
      isRunning: this.loop !== undefined && !this.isStopping,
    };
  }

  /** The delay before retry number `attempt` (1-based): half fixed, half jittered, capped. */
  backoffDelay(attempt: number): number {
    const cap = Math.min(this.maxBackoffMs, this.initialBackoffMs * this.multiplier ** Math.max(0, attempt - 1));
    return cap / 2 + this.random() * (cap / 2);
  }

  private async run(): Promise<void> {
    while (!this.isStopping) {
      this.hasWork = false;
      let batch: AuditEvent[] | SpooledEvent[];
      try {
        batch = this.transport.sendSpooled !== undefined ? await this.spool.readUnackedSpooled(this.batchSize) : await this.spool.readUnacked(this.batchSize);
      } catch (err) {
        await this.recordFailure(err, 'Audit spool could not be read; retrying.');
        continue;
      }
      if (this.isStopping) break;
      if (batch.length === 0) {
        if (this.spool.stats().queuedEvents === 0) this.resolveDrainWaiters();
        await this.waitForWork();
        continue;
      }
      let acked: string[];
      try {
        acked = await this.send(batch);
      } catch (err) {
        if (err instanceof StoppedError) break;
        await this.recordFailure(err, 'Audit shipping failed; retrying with backoff.');
        continue;
      }
      const sent = new Set(batch.map((e) => e.id));
      const valid = [...new Set(acked)].filter((id) => sent.has(id));
      if (valid.length === 0) {
        await this.recordFailure(new Error('The control plane acknowledged none of the batch.'), 'Audit shipping made no progress; retrying with backoff.');
        continue;
      }
      await this.spool.ack(valid);
      this.shipped += valid.length;
      this.batches += 1;
      this.lastShippedAt = this.timers.now();
      if (this.consecutiveFailures > 0) {
        this.logger.info('Audit shipping resumed.', { afterFailures: this.consecutiveFailures });
        this.consecutiveFailures = 0;
      }
    }
  }

  private send(batch: AuditEvent[] | SpooledEvent[]): Promise<string[]> {
    return new Promise<string[]>((resolve, reject) => {
      let isSettled = false;
      const finish = (settle: () => void): void => {
        if (isSettled) return;
        isSettled = true;
        this.timers.clearTimeout(timeout);
        this.abortSend = undefined;
        settle();
      };
      const timeout = this.timers.setTimeout(
        () => finish(() => reject(new Error(`The audit transport did not answer within ${this.sendTimeoutMs} ms.`))),
        this.sendTimeoutMs,
      );
      this.abortSend = () => finish(() => reject(new StoppedError()));
      let sending: Promise<{ acked: string[] }>;
      try {
        const { transport } = this;
        sending = transport.sendSpooled !== undefined ? transport.sendSpooled(batch as SpooledEvent[]) : transport.send(batch as AuditEvent[]);
      } catch (err) {
        sending = Promise.reject(err);
      }
      sending.then(
        (res) => {
          const acked: unknown = (res as { acked?: unknown } | undefined)?.acked;
          if (Array.isArray(acked) && acked.every((id) => typeof id === 'string')) finish(() => resolve(acked as string[]));
          else finish(() => reject(new TypeError('The audit transport answered without a list of acknowledged ids.')));
        },
        (err: unknown) => finish(() => reject(err)),
      );
    });
  }

  private async recordFailure(err: unknown, message: string): Promise<void> {
    this.failures += 1;
    this.consecutiveFailures += 1;
    const delayMs = this.backoffDelay(this.consecutiveFailures);
    const fields = { error: err, attempt: this.consecutiveFailures, retryInMs: Math.round(delayMs), pendingEvents: this.spool.stats().pendingEvents };
    // One warning per outage; the retries after it are debug noise.
    if (this.consecutiveFailures === 1) this.logger.warn(message, fields);
    else this.logger.debug(message, fields);
    await this.sleep(delayMs);
  }

  private sleep(ms: number): Promise<void> {
    if (this.isStopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        this.timers.clearTimeout(handle);
        this.sleeping = undefined;
        resolve();
      };
      const handle = this.timers.setTimeout(wake, ms);
      this.sleeping = { handle, wake };
    });
  }

  private wakeSleeper(): void {
    const sleeping = this.sleeping;
    sleeping?.wake();
  }

  private waitForWork(): Promise<void> {
    if (this.hasWork || this.isStopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.workWaiter = resolve;
    });
  }

  private notifyWork(): void {
    this.hasWork = true;
    const waiter = this.workWaiter;
    this.workWaiter = undefined;
    waiter?.();
  }

  private resolveDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
