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

  // Limits and dependencies
  RATE_LIMITED: spec(429, GRPC.RESOURCE_EXHAUSTED, '53400', true, 'Too many requests; try again later.'),
  DEPENDENCY_UNAVAILABLE: spec(503, GRPC.UNAVAILABLE, '08006', true, 'A service this request depends on is unavailable.'),
  DATABASE_UNAVAILABLE: spec(503, GRPC.UNAVAILABLE, '08006', true, 'The database is unavailable.'),
  NOT_READY: spec(503, GRPC.UNAVAILABLE, '57P03', true, 'The service is not ready.'),
  CONFIG_INVALID: spec(500, GRPC.INTERNAL, 'F0000', false, 'The configuration is not valid.'),
  INTERNAL: spec(500, GRPC.INTERNAL, 'XX000', false, 'Internal error.'),
} as const satisfies Record<string, ErrorCodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Every registered code, sorted. */
export const errorCodes = (): ErrorCode[] => (Object.keys(ERROR_CODES) as ErrorCode[]).sort();
