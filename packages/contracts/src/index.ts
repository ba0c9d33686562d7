/**
 * gRPC contracts of Port Authorizing (`portauth.v1`), generated from `proto/` by
 * `pnpm generate` (ts-proto, grpc-js services). Never edit `src/gen/` by hand.
 *
 * Each message is both an interface (the shape) and a value with `encode`,
 * `decode`, `fromJSON`, `toJSON`, `create` and `fromPartial`. Each service has a
 * `…Service` definition (for `server.addService`), a `…Server` interface to
 * implement, and a `…Client` constructor.
 */
export * from './gen/portauth/v1/common';
export * from './gen/portauth/v1/audit';
export * from './gen/portauth/v1/grants';
export * from './gen/portauth/v1/nodes';
export { Timestamp } from './gen/google/protobuf/timestamp';
export { SECRET_FIELDS, redactSecrets, type SecretField } from './secret-fields';
export { timestampFromDate, dateFromTimestamp } from './timestamps';
export { AUDIT_ACTION_PATTERN, AUDIT_DECISION_OUTCOMES, AUDIT_EVENT_ID_PATTERN, AUDIT_PROTOCOLS, AUDIT_RESULT_OUTCOMES, spooledAuditEventSchema, type SpooledAuditEvent } from './spooled-audit-event';
