import { Counter, Gauge, type Registry } from 'prom-client';
import type { AuditShipperStats } from './audit-shipper';
import type { AuditSpoolStats } from './audit-spool';

/** Sources the audit metrics read at scrape time. */
export interface AuditMetricSources {
  spool: { stats(): AuditSpoolStats };
  shipper?: { stats(): AuditShipperStats };
}

/**
 * Registers the audit spool and shipper metrics in `registry` (the node's own,
 * injected; never the global one). Values are read from the `stats()` getters
 * at scrape time, so nothing on the append path touches prom-client.
 */
export const registerAuditMetrics = (registry: Registry, sources: AuditMetricSources): void => {
  const registers = [registry];
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  };
  const counter = (name: string, help: string, read: () => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        // The source keeps the running total; mirror it.
        this.reset();
        this.inc(read());
      },
    });
  };
  const { spool, shipper } = sources;
  gauge('pa_audit_spool_pending_events', 'Durable audit events not yet acknowledged by the control plane.', () => spool.stats().pendingEvents);
  gauge('pa_audit_spool_pending_bytes', 'Bytes of durable audit events not yet acknowledged.', () => spool.stats().pendingBytes);
  gauge('pa_audit_spool_queued_events', 'Audit events accepted but not yet durable.', () => spool.stats().queuedEvents);
  gauge('pa_audit_spool_capacity_bytes', 'Bound on unacknowledged audit bytes.', () => spool.stats().capacityBytes);
  gauge('pa_audit_spool_disk_bytes', 'Bytes of audit segment files on disk.', () => spool.stats().diskBytes);
  gauge('pa_audit_spool_segments', 'Audit segment files on disk.', () => spool.stats().segments);
  gauge('pa_audit_spool_writable', '1 when the audit spool accepts writes, 0 while it refuses after a disk error.', () => (spool.stats().isWritable ? 1 : 0));
  counter('pa_audit_spool_fsyncs_total', 'fdatasync calls made for audit appends.', () => spool.stats().fsyncs);
  counter('pa_audit_spool_refusals_total', 'Audit events refused because the spool was full or unwritable.', () => spool.stats().refusals);
  counter('pa_audit_spool_dropped_records_total', 'Audit records found unreadable and dropped.', () => spool.stats().droppedRecords);
  counter('pa_audit_spool_lost_events_total', 'Audit events written (written durability) whose fdatasync failed.', () => spool.stats().lostEvents);
  if (shipper !== undefined) {
    counter('pa_audit_shipped_events_total', 'Audit events acknowledged by the control plane.', () => shipper.stats().shippedEvents);
    counter('pa_audit_ship_failures_total', 'Failed audit shipping attempts.', () => shipper.stats().failures);
    gauge('pa_audit_ship_consecutive_failures', 'Audit shipping failures since the last success.', () => shipper.stats().consecutiveFailures);
  }
};
