import { AppError } from '@pa/kit';
import { backend, type ErrorSeverity } from '@pa/pgwire';

/**
 * Small wire helpers of the postgres handler: the ErrorResponses it sends in
 * its own name, and the "poison" messages that make the backend fail at the
 * exact place of a refused message, so that PostgreSQL itself applies its
 * transaction and skip-to-Sync semantics (see README.md, "Denials").
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

/** The ErrorResponse for an AppError (SQLSTATE from the registry, never the cause). */
export const errorFrame = (err: AppError, severity: ErrorSeverity = 'ERROR'): Buffer => backend.errorResponseFromAppError(err, severity);

/** Cuts a reason to a length fit for an error message. */
const shortReason = (reason: string): string => (reason.length > 1000 ? `${reason.slice(0, 1000)}…` : reason);

/** 42501 for a statement the policy refused, naming the rule (the engine's reason names rule and policy). */
export const policyDeniedError = (reason: string): AppError =>
  new AppError('POLICY_DENIED', {
    message: `permission denied by policy: ${shortReason(reason)}`,
    meta: { hint: 'Ask an administrator to extend your policy, or use "pa admin policies evaluate" to see which rule applies.' },
  });

/** 54000 for a Query or Parse over the proxy's size cap (skipped unread; the session goes on). */
export const statementTooLargeError = (bytes: number, capBytes: number): AppError =>
  new AppError('PAYLOAD_TOO_LARGE', {
    message: `statement too large: ${bytes} bytes, over the proxy's limit of ${capBytes} bytes`,
    meta: { hint: 'Send large values as parameters of a prepared statement or with COPY, or split the statement.' },
  });

/** 54000 for a Bind whose parameters are over the proxy's size cap (skipped unread; the session goes on). */
export const parametersTooLargeError = (bytes: number, capBytes: number): AppError =>
  new AppError('PAYLOAD_TOO_LARGE', {
    message: `parameters too large: ${bytes} bytes in one Bind, over the proxy's limit of ${capBytes} bytes`,
    meta: { hint: 'Send large values with COPY, or in smaller pieces.' },
  });

/** 53400 for a statement refused by the statement rate limit. */
export const rateLimitedError = (retryAfterMs: number): AppError =>
  new AppError('RATE_LIMITED', { message: `statement rate limit exceeded; retry in ${Math.max(1, Math.ceil(retryAfterMs / 1000))} s.` });

/**
 * 57P01 sent (as FATAL) when the session must end: revocation, the grant's
 * end, node drain. PostgreSQL's own wording for an administrator shutdown.
 */
export const terminatedError = (why: string): AppError => new AppError('PG_SESSION_TERMINATED', { message: `terminating connection: ${why}` });

/** Why an aborted session ends, in words for the client, from `signal.reason`. */
export const abortWords = (reason: unknown): string => {
  if (reason instanceof AppError) {
    if (reason.code === 'GRANT_REVOKED' || reason.code === 'AUTH_SESSION_REVOKED') return 'grant revoked';
    if (reason.code === 'GRANT_EXPIRED') return 'grant expired';
    if (reason.code === 'NOT_READY') return 'proxy node shutting down';
  }
  return 'session ended by the proxy';
};

/** Short machine reason for SessionResult, from `signal.reason`. */
export const abortReason = (reason: unknown): string => {
  if (reason instanceof AppError) {
    if (reason.code === 'GRANT_REVOKED' || reason.code === 'AUTH_SESSION_REVOKED') return 'revoked';
    if (reason.code === 'GRANT_EXPIRED') return 'grant_expired';
    if (reason.code === 'NOT_READY') return 'draining';
    return reason.code.toLowerCase();
  }
  return 'aborted';
};

/**
 * A Parse message (named statement, no parameter types), built by hand because
 * the proxy sends it to the backend.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARSE
 */
export const parseMessage = (name: string, sql: string): Buffer => {
  const n = Buffer.byteLength(name, 'utf8');
  const s = Buffer.byteLength(sql, 'utf8');
  const b = Buffer.allocUnsafe(1 + 4 + n + 1 + s + 1 + 2);
  b[0] = 0x50;
  b.writeInt32BE(b.length - 1, 1);
  let p = 5;
  p += b.write(name, p, 'utf8');
  b[p++] = 0;
  p += b.write(sql, p, 'utf8');
  b[p++] = 0;
  b.writeInt16BE(0, p);
  return b;
};

/**
 * The text of a poison statement: a lone identifier, which PostgreSQL's raw
 * parser rejects (42601 `syntax error at or near "<token>"`) before it looks at
 * the transaction state, so the error happens in every state (idle, in a
 * block, in a failed block) and never touches data. The token is unique per
 * refusal, so the proxy recognises the error it provoked.
 */
export const poisonToken = (sessionNonce: string, seq: number): string => `pa_refused_${sessionNonce}_${seq}`;

/** The SQLSTATE a poison statement provokes. */
export const POISON_SQLSTATE = '42601';
