import { type AppError } from '@pa/kit';
import { BodyReader, MalformedBody } from './body-reader';
import { protocolViolation } from './protocol-error';

/** The outcome of reading a message body whose layout depends on state: a value, or a violation. */
export type ReadResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: AppError };

const read = <T>(body: Buffer, fn: (r: BodyReader) => T): ReadResult<T> => {
  try {
    const r = new BodyReader(body);
    const value = fn(r);
    r.end();
    return { ok: true, value };
  } catch (err) {
    if (err instanceof MalformedBody) return { ok: false, error: protocolViolation(err.message) };
    throw err;
  }
};

/**
 * Reads the body of a PasswordMessage ('p' after AuthenticationCleartextPassword
 * or AuthenticationMD5Password): one NUL-terminated string.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PASSWORDMESSAGE
 */
export const readPasswordMessage = (body: Buffer): ReadResult<string> => read(body, (r) => r.cstring());

/** A decoded SASLInitialResponse. */
export interface SASLInitialResponseBody {
  readonly mechanism: string;
  /** The client-first-message, or null when the client sent none (length -1). */
  readonly data: Buffer | null;
}

/**
 * Reads the body of a SASLInitialResponse ('p' after AuthenticationSASL).
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SASLINITIALRESPONSE
 */
export const readSASLInitialResponse = (body: Buffer): ReadResult<SASLInitialResponseBody> =>
  read(body, (r) => {
    const mechanism = r.cstring();
    const len = r.int32();
    if (len < -1) throw new MalformedBody('Invalid SASL data length.');
    return { mechanism, data: len === -1 ? null : r.bytes(len) };
  });

/**
 * Reads the body of a SASLResponse ('p' after AuthenticationSASLContinue): the bytes as sent.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SASLRESPONSE
 */
export const readSASLResponse = (body: Buffer): ReadResult<Buffer> => read(body, (r) => r.rest());
