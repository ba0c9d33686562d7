/**
 * The one registry of error codes. Each code is defined once, with how it is
 * reported at every edge: HTTP status, gRPC status code, PostgreSQL SQLSTATE
 * (for the pgwire edge), whether a retry can succeed, and a safe default
 * message. `docs/errors.md` lists every code; a test keeps the two in step.
 */
export interface ErrorCodeSpec {
  /** HTTP status used by the REST edge and tunnel handshake. */
  readonly http: number;
  /** gRPC status code (numeric, as in @grpc/grpc-js `status`). */
  readonly grpc: number;
  /** SQLSTATE used when the error is reported to a PostgreSQL client. */
  readonly sqlstate: string;
  /** Whether the same request may succeed if retried later. */
  readonly retryable: boolean;
  /** Safe, public default message. */
  readonly message: string;
}

// gRPC status numbers (kept numeric so this package does not depend on grpc-js).
const GRPC = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

const spec = (
  http: number,
  grpc: number,
  sqlstate: string,
  retryable: boolean,
  message: string,
): ErrorCodeSpec => ({ http, grpc, sqlstate, retryable, message });

export const ERROR_CODES = {
  // Requests
  VALIDATION_FAILED: spec(400, GRPC.INVALID_ARGUMENT, '22023', false, 'The request is not valid.'),
  MALFORMED_JSON: spec(400, GRPC.INVALID_ARGUMENT, '22023', false, 'The request body is not valid JSON.'),
  PAYLOAD_TOO_LARGE: spec(413, GRPC.RESOURCE_EXHAUSTED, '54000', false, 'The request body is too large.'),
  UNSUPPORTED_MEDIA_TYPE: spec(415, GRPC.INVALID_ARGUMENT, '22023', false, 'The request body must be application/json.'),
  ROUTE_NOT_FOUND: spec(404, GRPC.UNIMPLEMENTED, '42883', false, 'No such endpoint.'),
  METHOD_NOT_ALLOWED: spec(405, GRPC.UNIMPLEMENTED, '42883', false, 'Method not allowed on this endpoint.'),

  // Authentication
  AUTH_REQUIRED: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'Authentication is required.'),
  AUTH_INVALID_CREDENTIALS: spec(401, GRPC.UNAUTHENTICATED, '28P01', false, 'Invalid username or password.'),
  AUTH_TOKEN_INVALID: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'The access token is not valid.'),
  AUTH_TOKEN_EXPIRED: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'The access token has expired.'),
  AUTH_REFRESH_INVALID: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'The refresh token is not valid.'),
  AUTH_REFRESH_REUSED: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'The refresh token was already used; the session has been revoked.'),
  AUTH_SESSION_REVOKED: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'The session has been revoked.'),
  AUTH_USER_DISABLED: spec(403, GRPC.PERMISSION_DENIED, '28000', false, 'The user account is disabled.'),
  AUTH_THROTTLED: spec(429, GRPC.RESOURCE_EXHAUSTED, '53400', true, 'Too many login attempts; try again later.'),
  AUTH_REGISTRATION_DISABLED: spec(403, GRPC.PERMISSION_DENIED, '42501', false, 'Self-registration is disabled.'),
  AUTH_PASSWORD_MISMATCH: spec(400, GRPC.INVALID_ARGUMENT, '28P01', false, 'The current password is not correct.'),
  AUTH_CLIENT_CERT_REQUIRED: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'A client certificate signed by the trusted CA is required.'),
  AUTH_CLIENT_CERT_MISMATCH: spec(403, GRPC.PERMISSION_DENIED, '28000', false, 'The client certificate does not name this identity.'),

  // Authorisation
  PERMISSION_DENIED: spec(403, GRPC.PERMISSION_DENIED, '42501', false, 'You do not have permission to do this.'),
  POLICY_DENIED: spec(403, GRPC.PERMISSION_DENIED, '42501', false, 'Denied by policy.'),

  // Resources
  USER_NOT_FOUND: spec(404, GRPC.NOT_FOUND, '42704', false, 'No such user.'),
  ROLE_NOT_FOUND: spec(404, GRPC.NOT_FOUND, '42704', false, 'No such role.'),
  CONNECTION_NOT_FOUND: spec(404, GRPC.NOT_FOUND, '42704', false, 'No such connection.'),
  POLICY_NOT_FOUND: spec(404, GRPC.NOT_FOUND, '42704', false, 'No such policy.'),
  GRANT_NOT_FOUND: spec(404, GRPC.NOT_FOUND, '42704', false, 'No such grant.'),
  KEY_NOT_FOUND: spec(404, GRPC.NOT_FOUND, '42704', false, 'No such key.'),
  CONFLICT: spec(409, GRPC.ALREADY_EXISTS, '23505', false, 'A resource with this identity already exists.'),
  ROLE_BUILT_IN: spec(409, GRPC.FAILED_PRECONDITION, '42501', false, 'Built-in roles cannot be changed this way.'),
  LAST_ADMIN: spec(409, GRPC.FAILED_PRECONDITION, '55000', false, 'This change would leave no active user able to manage users and roles.'),
  POLICY_INVALID: spec(422, GRPC.INVALID_ARGUMENT, '22023', false, 'The policy is not valid.'),
  PRECONDITION_FAILED: spec(412, GRPC.FAILED_PRECONDITION, '55000', false, 'The resource changed since it was read.'),

  // PostgreSQL wire protocol (packages/pgwire)
  PG_PROTOCOL_VIOLATION: spec(400, GRPC.INVALID_ARGUMENT, '08P01', false, 'The PostgreSQL protocol was violated.'),
  PG_STARTUP_REFUSED: spec(400, GRPC.INVALID_ARGUMENT, '08004', false, 'The connection startup was refused.'),
  PG_UNSAFE_PARAMETER_CHANGE: spec(403, GRPC.PERMISSION_DENIED, '42501', false, 'A session parameter was changed to a value the proxy does not allow.'),
  PG_BACKEND_UNAVAILABLE: spec(502, GRPC.UNAVAILABLE, '08001', true, 'The database server could not be reached.'),
  PG_BACKEND_TIMEOUT: spec(504, GRPC.DEADLINE_EXCEEDED, '08001', true, 'The database server did not answer in time.'),
  PG_BACKEND_TLS_FAILED: spec(502, GRPC.UNAVAILABLE, '08001', false, 'A secure connection to the database server could not be established.'),
  PG_BACKEND_AUTH_FAILED: spec(502, GRPC.UNAVAILABLE, '08001', false, 'The proxy could not authenticate to the database server.'),
  PG_BACKEND_REJECTED: spec(502, GRPC.UNAVAILABLE, '08001', false, 'The database server refused the connection.'),
  PG_BACKEND_PROTOCOL_VIOLATION: spec(502, GRPC.UNAVAILABLE, '08P01', false, 'The database server sent an invalid message.'),
  PG_BACKEND_CONNECTION_LOST: spec(502, GRPC.UNAVAILABLE, '08006', true, 'The connection to the database server was lost.'),
  PG_SESSION_TERMINATED: spec(503, GRPC.UNAVAILABLE, '57P01', false, 'terminating connection: the session was ended.'),
  PG_IDLE_TIMEOUT: spec(408, GRPC.DEADLINE_EXCEEDED, '57P05', false, 'terminating connection due to idle timeout.'),

  // HTTP data path (data-plane http handler)
  HTTP_PROTOCOL_VIOLATION: spec(400, GRPC.INVALID_ARGUMENT, '08P01', false, 'The HTTP request is malformed or uses a form the proxy refuses.'),
  HTTP_HEADERS_TOO_LARGE: spec(431, GRPC.RESOURCE_EXHAUSTED, '54000', false, 'The HTTP request head is too large.'),
  HTTP_REQUEST_TIMEOUT: spec(408, GRPC.DEADLINE_EXCEEDED, '57014', true, 'The HTTP request was not received in time.'),
  HTTP_BACKEND_UNAVAILABLE: spec(502, GRPC.UNAVAILABLE, '08001', true, 'The HTTP backend could not be reached.'),
  HTTP_BACKEND_CONNECTION_LOST: spec(502, GRPC.UNAVAILABLE, '08006', false, 'The connection to the HTTP backend was lost before the response was complete.'),
  HTTP_BACKEND_TIMEOUT: spec(504, GRPC.DEADLINE_EXCEEDED, '08001', true, 'The HTTP backend did not answer in time.'),

  // Grants (packages/grants): a data-plane node checking a grant, or the control plane renewing one
  GRANT_MALFORMED: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'The grant is malformed.'),
  GRANT_ALGORITHM_REJECTED: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'The grant uses an algorithm that is not accepted.'),
  GRANT_KEY_UNKNOWN: spec(401, GRPC.UNAUTHENTICATED, '28000', true, 'The grant names a key that is not known here.'),
  GRANT_SIGNATURE_INVALID: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'The grant signature is not valid.'),
  GRANT_EXPIRED: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'The grant has expired.'),
  GRANT_NOT_YET_VALID: spec(401, GRPC.UNAUTHENTICATED, '28000', true, 'The grant is not valid yet.'),
  GRANT_AUDIENCE_MISMATCH: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'The grant is not meant for this service.'),
  GRANT_ISSUER_MISMATCH: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'The grant was not issued by a trusted control plane.'),
  GRANT_CREDENTIALS_UNREADABLE: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'The backend credentials in the grant cannot be read.'),

  // Audit spool (data plane): refuse rather than run unaudited
  AUDIT_SPOOL_FULL: spec(503, GRPC.RESOURCE_EXHAUSTED, '58000', true, 'The audit trail cannot take more events now; the request was refused rather than run unaudited.'),
  AUDIT_UNAVAILABLE: spec(503, GRPC.UNAVAILABLE, '58000', true, 'The audit trail cannot be written now; the request was refused rather than run unaudited.'),
  // Audit ingestion (control plane): a node may only ship its own events
  AUDIT_NODE_MISMATCH: spec(403, GRPC.PERMISSION_DENIED, '42501', false, 'The audit event names another node than the one that sent it.'),

  // Limits and dependencies
  RATE_LIMITED: spec(429, GRPC.RESOURCE_EXHAUSTED, '53400', true, 'Too many requests; try again later.'),
  CONCURRENCY_LIMITED: spec(429, GRPC.RESOURCE_EXHAUSTED, '53300', true, 'Too many open connections for this grant or user.'),
  GRANT_REVOKED: spec(401, GRPC.UNAUTHENTICATED, '28000', false, 'The grant has been revoked.'),
  REVOCATION_STATUS_UNKNOWN: spec(503, GRPC.UNAVAILABLE, '57P03', true, 'Revocation status cannot be confirmed right now; new connections are refused until it can.'),
  DEPENDENCY_UNAVAILABLE: spec(503, GRPC.UNAVAILABLE, '08006', true, 'A service this request depends on is unavailable.'),
  DATABASE_UNAVAILABLE: spec(503, GRPC.UNAVAILABLE, '08006', true, 'The database is unavailable.'),
  NOT_READY: spec(503, GRPC.UNAVAILABLE, '57P03', true, 'The service is not ready.'),
  CONFIG_INVALID: spec(500, GRPC.INTERNAL, 'F0000', false, 'The configuration is not valid.'),
  INTERNAL: spec(500, GRPC.INTERNAL, 'XX000', false, 'Internal error.'),
} as const satisfies Record<string, ErrorCodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Every registered code, sorted. */
export const errorCodes = (): ErrorCode[] => (Object.keys(ERROR_CODES) as ErrorCode[]).sort();
