import { createNullLogger, type Logger } from '@pa/kit';
import { systemClock, type Clock } from './clock';
import { LeaseHandle, LeaseTable, parseAcquire, type AcquireRequest, type AcquireResult, type Concurrency, type LeaseBackend } from './concurrency';

/** Options of {@link MemoryConcurrency}. */
export interface MemoryConcurrencyOptions {
  clock?: Clock;
  logger?: Logger;
}

/** Concurrency caps counted in this process only: the embedded single-node default. */
export class MemoryConcurrency implements Concurrency, LeaseBackend {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly table: LeaseTable;
  private readonly held = new Set<LeaseHandle>();

  constructor(options: MemoryConcurrencyOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? createNullLogger();
    this.table = new LeaseTable(this.clock);
  }

  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    const parsed = parseAcquire(request);
    const lease = new LeaseHandle(parsed, this, this.clock, this.logger);
    const refused = this.table.tryHold(lease.id, parsed, lease.expiresAt);
    if (refused) return { ok: false, scope: refused, source: 'local' };
    this.held.add(lease);
    lease.startRenewing();
    return { ok: true, lease, source: 'local' };
  }

  async renew(lease: LeaseHandle): Promise<boolean> {
    const expiresAt = lease.nextExpiry();
    if (this.table.tryHold(lease.id, lease.request, expiresAt) !== null) return false;
    lease.expiresAt = expiresAt;
    return true;
  }

  async release(lease: LeaseHandle): Promise<void> {
    this.held.delete(lease);
    this.table.remove(lease.id, lease.grantId, lease.userId);
  }

  async close(): Promise<void> {
    await Promise.all([...this.held].map((lease) => lease.release()));
  }
}
