import { MessageWriter } from './message-writer';
import {
  CANCEL_REQUEST_CODE,
  FrontendCode,
  GSSENC_REQUEST_CODE,
  MAX_CANCEL_KEY_LENGTH,
  MIN_CANCEL_KEY_LENGTH,
  PROTOCOL_LATEST_MINOR,
  PROTOCOL_MAJOR,
  SSL_REQUEST_CODE,
} from './protocol-codes';

/**
 * Builders for the messages the proxy sends to a backend server, byte-exact to
 * the protocol's layouts.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

/**
 * A StartupMessage with the given parameters (in insertion order), protocol
 * 3.0 unless `minor` says otherwise.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-STARTUPMESSAGE
 */
export const startupMessage = (
  parameters: ReadonlyMap<string, string> | Readonly<Record<string, string>>,
  minor: number = PROTOCOL_LATEST_MINOR,
): Buffer => {
  const w = new MessageWriter().beginUntyped().int32((PROTOCOL_MAJOR << 16) | minor);
  const entries = parameters instanceof Map ? [...parameters.entries()] : Object.entries(parameters);
  for (const [name, value] of entries) {
    if (name === '') throw new RangeError('A startup parameter name cannot be empty.');
    w.cstring(name).cstring(value);
  }
  return w.int8(0).end().finish();
};

const request = (code: number): Buffer => {
  const b = Buffer.allocUnsafe(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(code, 4);
  return b;
};

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SSLREQUEST */
export const sslRequest = (): Buffer => request(SSL_REQUEST_CODE);

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-GSSENCREQUEST */
export const gssEncRequest = (): Buffer => request(GSSENC_REQUEST_CODE);

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CANCELREQUEST */
export const cancelRequest = (processId: number, secretKey: Uint8Array): Buffer => {
  if (secretKey.length < MIN_CANCEL_KEY_LENGTH || secretKey.length > MAX_CANCEL_KEY_LENGTH) {
    throw new RangeError('A cancel key is 4 to 256 bytes.');
  }
  return new MessageWriter(12 + secretKey.length)
    .beginUntyped()
    .int32(CANCEL_REQUEST_CODE)
    .int32(processId)
    .bytes(secretKey)
    .end()
    .finish();
};

/**
 * A cleartext or MD5-hashed password ('p').
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PASSWORDMESSAGE
 */
export const passwordMessage = (password: string): Buffer =>
  new MessageWriter().begin(FrontendCode.Password).cstring(password).end().finish();

/**
 * The first SASL message: mechanism name, then the client-first-message with
 * its length (-1 when absent).
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SASLINITIALRESPONSE
 */
export const saslInitialResponse = (mechanism: string, data: Uint8Array | null): Buffer => {
  const w = new MessageWriter().begin(FrontendCode.Password).cstring(mechanism);
  if (data === null) w.int32(-1);
  else w.int32(data.length).bytes(data);
  return w.end().finish();
};

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SASLRESPONSE */
export const saslResponse = (data: Uint8Array): Buffer =>
  new MessageWriter(5 + data.length).begin(FrontendCode.Password).bytes(data).end().finish();

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-QUERY */
export const query = (sql: string): Buffer => new MessageWriter(6 + sql.length * 3).begin(FrontendCode.Query).cstring(sql).end().finish();

const empty = (type: number): Buffer => {
  const b = Buffer.allocUnsafe(5);
  b[0] = type;
  b.writeInt32BE(4, 1);
  return b;
};

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SYNC */
export const sync = (): Buffer => empty(FrontendCode.Sync);

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-FLUSH */
export const flush = (): Buffer => empty(FrontendCode.Flush);

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-TERMINATE */
export const terminate = (): Buffer => empty(FrontendCode.Terminate);
