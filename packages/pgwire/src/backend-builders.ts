import { type AppError } from '@pa/kit';
import { MessageWriter } from './message-writer';
import { AuthCode, BackendCode, MAX_CANCEL_KEY_LENGTH, MIN_CANCEL_KEY_LENGTH, type TransactionStatus } from './protocol-codes';

/**
 * Builders for the messages the proxy sends to its client, byte-exact to the
 * protocol's layouts. Each returns one complete frame.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

const fixed = (type: number, body: number[] = []): Buffer => {
  const b = Buffer.allocUnsafe(5 + body.length);
  b[0] = type;
  b.writeInt32BE(4 + body.length, 1);
  for (let i = 0; i < body.length; i += 1) b[5 + i] = body[i] as number;
  return b;
};

const authRequest = (code: number, extra?: Uint8Array): Buffer => {
  const w = new MessageWriter(9 + (extra?.length ?? 0)).begin(BackendCode.Authentication).int32(code);
  if (extra) w.bytes(extra);
  return w.end().finish();
};

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONOK */
export const authenticationOk = (): Buffer => authRequest(AuthCode.Ok);

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONCLEARTEXTPASSWORD */
export const authenticationCleartextPassword = (): Buffer => authRequest(AuthCode.CleartextPassword);

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONMD5PASSWORD */
export const authenticationMD5Password = (salt: Uint8Array): Buffer => {
  if (salt.length !== 4) throw new RangeError('An MD5 salt is 4 bytes.');
  return authRequest(AuthCode.MD5Password, salt);
};

/**
 * Lists the SASL mechanisms offered, each NUL-terminated, then a final NUL.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONSASL
 */
export const authenticationSASL = (mechanisms: readonly string[]): Buffer => {
  const w = new MessageWriter().begin(BackendCode.Authentication).int32(AuthCode.SASL);
  for (const m of mechanisms) w.cstring(m);
  return w.int8(0).end().finish();
};

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONSASLCONTINUE */
export const authenticationSASLContinue = (data: Uint8Array): Buffer => authRequest(AuthCode.SASLContinue, data);

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONSASLFINAL */
export const authenticationSASLFinal = (data: Uint8Array): Buffer => authRequest(AuthCode.SASLFinal, data);

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARAMETERSTATUS */
export const parameterStatus = (name: string, value: string): Buffer =>
  new MessageWriter().begin(BackendCode.ParameterStatus).cstring(name).cstring(value).end().finish();

/**
 * The cancel key handed to the client: a process id and a secret (4 bytes in
 * protocol 3.0; 4 to 256 bytes from 3.2).
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BACKENDKEYDATA
 */
export const backendKeyData = (processId: number, secretKey: Uint8Array): Buffer => {
  if (secretKey.length < MIN_CANCEL_KEY_LENGTH || secretKey.length > MAX_CANCEL_KEY_LENGTH) {
    throw new RangeError('A cancel key is 4 to 256 bytes.');
  }
  return new MessageWriter(9 + secretKey.length).begin(BackendCode.BackendKeyData).int32(processId).bytes(secretKey).end().finish();
};

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-READYFORQUERY */
export const readyForQuery = (status: TransactionStatus): Buffer => fixed(BackendCode.ReadyForQuery, [status.charCodeAt(0)]);

/** Severity of an ErrorResponse or NoticeResponse (field `S`, and non-localised `V`). */
export type ErrorSeverity = 'ERROR' | 'FATAL' | 'PANIC';
/** Severity of a NoticeResponse. */
export type NoticeSeverity = 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';

/**
 * Fields of an ErrorResponse / NoticeResponse. Only the fields set are sent.
 *
 * @see https://www.postgresql.org/docs/current/protocol-error-fields.html
 */
export interface ErrorFields {
  readonly severity: ErrorSeverity | NoticeSeverity;
  /** SQLSTATE, five characters. */
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
  /** 1-based character position in the query string. */
  readonly position?: number;
}

const noticeFields = (type: number, f: ErrorFields): Buffer => {
  if (!/^[0-9A-Z]{5}$/.test(f.code)) throw new RangeError('A SQLSTATE is five digits or upper-case letters.');
  const w = new MessageWriter().begin(type);
  w.int8(0x53).cstring(f.severity); // S
  w.int8(0x56).cstring(f.severity); // V (non-localised, since 9.6)
  w.int8(0x43).cstring(f.code); // C
  w.int8(0x4d).cstring(f.message); // M
  if (f.detail !== undefined) w.int8(0x44).cstring(f.detail); // D
  if (f.hint !== undefined) w.int8(0x48).cstring(f.hint); // H
  if (f.position !== undefined) w.int8(0x50).cstring(String(f.position)); // P
  return w.int8(0).end().finish();
};

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-ERRORRESPONSE */
export const errorResponse = (fields: ErrorFields): Buffer => noticeFields(BackendCode.ErrorResponse, fields);

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-NOTICERESPONSE */
export const noticeResponse = (fields: ErrorFields): Buffer => noticeFields(BackendCode.NoticeResponse, fields);

/** Replaces NUL (which would cut a protocol string) in text taken from elsewhere. */
const safeText = (s: string): string => (s.includes('\0') ? s.replace(/\0/g, '\uFFFD') : s);

/**
 * The ErrorResponse for an AppError: SQLSTATE from the error registry, the
 * error's public message, its field problems as DETAIL and `meta.hint` (when a
 * string) as HINT. The cause is never sent.
 */
export const errorResponseFromAppError = (err: AppError, severity: ErrorSeverity = 'ERROR'): Buffer => {
  const detail = err.details.length > 0 ? err.details.map((d) => (d.path ? `${d.path}: ${d.message}` : d.message)).join('\n') : undefined;
  const hint = typeof err.meta.hint === 'string' ? err.meta.hint : undefined;
  return errorResponse({
    severity,
    code: err.spec.sqlstate,
    message: safeText(err.message),
    ...(detail !== undefined ? { detail: safeText(detail) } : {}),
    ...(hint !== undefined ? { hint: safeText(hint) } : {}),
  });
};

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COMMANDCOMPLETE */
export const commandComplete = (tag: string): Buffer =>
  new MessageWriter(6 + tag.length * 3).begin(BackendCode.CommandComplete).cstring(tag).end().finish();

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-EMPTYQUERYRESPONSE */
export const emptyQueryResponse = (): Buffer => fixed(BackendCode.EmptyQueryResponse);

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARSECOMPLETE */
export const parseComplete = (): Buffer => fixed(BackendCode.ParseComplete);

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BINDCOMPLETE */
export const bindComplete = (): Buffer => fixed(BackendCode.BindComplete);

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CLOSECOMPLETE */
export const closeComplete = (): Buffer => fixed(BackendCode.CloseComplete);

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-NODATA */
export const noData = (): Buffer => fixed(BackendCode.NoData);

/** One column of a RowDescription. Defaults: no table, text format, typmod -1. */
export interface ColumnDescription {
  readonly name: string;
  /** Type OID, e.g. 25 for text, 23 for int4. */
  readonly typeOid: number;
  /** pg_type.typlen: -1 for variable-length types. Default -1. */
  readonly typeSize?: number;
  readonly typeModifier?: number;
  readonly tableOid?: number;
  readonly columnAttribute?: number;
  /** 0 text, 1 binary. Default 0. */
  readonly format?: number;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-ROWDESCRIPTION */
export const rowDescription = (columns: readonly ColumnDescription[]): Buffer => {
  const w = new MessageWriter().begin(BackendCode.RowDescription).int16(columns.length);
  for (const c of columns) {
    w.cstring(c.name)
      .uint32(c.tableOid ?? 0)
      .int16(c.columnAttribute ?? 0)
      .uint32(c.typeOid)
      .int16(c.typeSize ?? -1)
      .int32(c.typeModifier ?? -1)
      .int16(c.format ?? 0);
  }
  return w.end().finish();
};

/**
 * One row; strings are sent as UTF-8 text, `null` as SQL NULL.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-DATAROW
 */
export const dataRow = (values: readonly (string | Uint8Array | null)[]): Buffer => {
  const w = new MessageWriter().begin(BackendCode.DataRow).int16(values.length);
  for (const v of values) {
    if (v === null) w.int32(-1);
    else {
      const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      w.int32(bytes.length).bytes(bytes);
    }
  }
  return w.end().finish();
};

/**
 * Tells a client which protocol minor version the server speaks and which
 * `_pq_.` protocol options it did not recognise.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-NEGOTIATEPROTOCOLVERSION
 */
export const negotiateProtocolVersion = (newestMinor: number, unrecognizedOptions: readonly string[] = []): Buffer => {
  const w = new MessageWriter().begin(BackendCode.NegotiateProtocolVersion).int32(newestMinor).int32(unrecognizedOptions.length);
  for (const o of unrecognizedOptions) w.cstring(o);
  return w.end().finish();
};

/**
 * The one-byte answer to an SSLRequest or GSSENCRequest: 'S' (go ahead with
 * TLS) or 'N' (not here).
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
 */
export const encryptionResponse = (accept: boolean): Buffer => Buffer.from([accept ? 0x53 : 0x4e]);
