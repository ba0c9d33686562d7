/**
 * Durable audit for the data plane: handlers record through {@link AuditRecorder}
 * into an {@link AuditSpool} on disk; an {@link AuditShipper} ships it to the
 * control plane through an {@link AuditTransport}. See README.md.
 */
export {
  auditEventSchema,
  isDecisionOutcome,
  AUDIT_OUTCOMES,
  DECISION_OUTCOMES,
  RESULT_OUTCOMES,
  type AuditActor,
  type AuditDecisionOutcome,
  type AuditEvent,
  type AuditOutcome,
  type AuditProtocol,
  type AuditResultOutcome,
} from './audit-event';
export {
  AuditSpool,
  AUDIT_SPOOL_DEFAULTS,
  type AuditAdmission,
  type AuditSpoolDurability,
  type AuditSpoolOptions,
  type AuditSpoolReader,
  type AuditSpoolStats,
  type SpooledEvent,
} from './audit-spool';
export {
  AuditShipper,
  AUDIT_SHIPPER_DEFAULTS,
  MAX_AUDIT_BATCH,
  type AuditFlushResult,
  type AuditShipperOptions,
  type AuditShipperStats,
  type AuditTransport,
} from './audit-shipper';
export {
  AuditRecorder,
  type AuditAppender,
  type AuditDecisionDraft,
  type AuditEventDraft,
  type AuditOutcomeDraft,
  type AuditRecorderOptions,
  type AuditSessionFields,
  type SessionAuditHooks,
  type AuditSink,
} from './audit-recorder';
export { registerAuditMetrics, type AuditMetricSources } from './audit-metrics';
export { nodeSpoolFs, type SpoolFileHandle, type SpoolFs } from './spool-fs';
export { systemTimers, type AuditTimers } from './timers';
