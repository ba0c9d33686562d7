import { type AppError } from '@pa/kit';
import { BodyReader, MalformedBody } from './body-reader';
import type {
  Bind,
  CancelRequest,
  Close,
  Describe,
  Execute,
  FrontendMessage,
  FunctionCall,
  OversizedStatement,
  Parse,
  StartupMessage,
} from './frontend-messages';
import {
  CANCEL_REQUEST_CODE,
  FrontendCode,
  GSSENC_REQUEST_CODE,
  MAX_CANCEL_KEY_LENGTH,
  MAX_STARTUP_PACKET_LENGTH,
  MIN_CANCEL_KEY_LENGTH,
  PROTOCOL_MAJOR,
  SSL_REQUEST_CODE,
} from './protocol-codes';
import { protocolViolation } from './protocol-error';

/**
 * Caps on the length word of each frontend message (the value of the Int32
 * length field, which counts itself but not the type byte). A message over its
 * cap is a protocol violation before any of its body is buffered.
 */
export interface FrontendDecoderLimits {
  /** StartupMessage, SSLRequest, GSSENCRequest, CancelRequest. Default 10000 (PostgreSQL's own cap). */
  readonly maxStartupLength: number;
  /** Query ('Q') and Parse ('P'). Default 1 MiB. */
  readonly maxQueryLength: number;
  /** Bind ('B'), which carries parameter values. Default 1 MiB. */
  readonly maxBindLength: number;
  /** FunctionCall ('F'). Default 1 MiB. */
  readonly maxFunctionCallLength: number;
  /** CopyData ('d'). Default 1 MiB. */
  readonly maxCopyDataLength: number;
  /** Authentication responses ('p'). Default 64 KiB (PostgreSQL's `PG_MAX_AUTH_TOKEN_LENGTH`). */
  readonly maxAuthLength: number;
  /** Execute, Describe, Close, CopyFail (names and short text). Default 64 KiB. */
  readonly maxControlLength: number;
  /**
   * A Query or Parse over `maxQueryLength`, or a Bind over `maxBindLength`,
   * but within PostgreSQL's own 1 GiB message limit is skipped unbuffered and
   * reported as an `OversizedStatement` (default true); false makes it a violation.
   */
  readonly skipOversizedStatements: boolean;
}

/** PostgreSQL's own limit on a message's length word (PQ_LARGE_MESSAGE_LIMIT + 4). */
const PG_MAX_MESSAGE_LENGTH = 0x3fffffff + 4;
const EMPTY = Buffer.alloc(0);
/** {@link FrontendDecoder.frameSize}: the frame is an oversized statement, to be skipped. */
const SKIP = -2;

/** The default {@link FrontendDecoderLimits}. */
export const DEFAULT_FRONTEND_LIMITS: Readonly<FrontendDecoderLimits> = Object.freeze({
  maxStartupLength: MAX_STARTUP_PACKET_LENGTH,
  maxQueryLength: 1024 * 1024,
  maxBindLength: 1024 * 1024,
  maxFunctionCallLength: 1024 * 1024,
  maxCopyDataLength: 1024 * 1024,
  maxAuthLength: 65535,
  maxControlLength: 64 * 1024,
  skipOversizedStatements: true,
});

/**
 * Where the decoder is in the connection:
 * - `startup`: expecting untyped startup-phase packets;
 * - `negotiating`: an SSLRequest or GSSENCRequest was decoded; no byte may
 *   arrive until the proxy answered it and called {@link FrontendDecoder.negotiationAnswered};
 * - `normal`: after the StartupMessage, typed messages;
 * - `ended`: after a CancelRequest (the connection carries nothing else);
 * - `failed`: a violation was found; the decoder emits nothing more.
 */
export type FrontendPhase = 'startup' | 'negotiating' | 'normal' | 'ended' | 'failed';

/** Receives each decoded message, in order. */
export type FrontendMessageSink = (message: FrontendMessage) => void;

const STARTUP_HEADER = 4;
const TYPED_HEADER = 5;

const positiveInt = (v: number, name: string): number => {
  if (!Number.isInteger(v) || v < 4 || v > 0x7fffffff) throw new RangeError(`${name} must be an integer >= 4.`);
  return v;
};

/**
 * The strict frontend framer and decoder (client → proxy).
 *
 * An incremental, length-prefixed state machine in two phases: untyped
 * startup-phase packets, then typed messages. It yields the same messages for
 * any split of the input (one byte at a time) and any concatenation; it checks
 * every length against a per-type cap before buffering, rejects unknown types,
 * validates each body against its layout (PostgreSQL's own checks: terminated
 * UTF-8 strings, no trailing bytes, known sub-codes), and never throws on input:
 * a violation is returned as an AppError `PG_PROTOCOL_VIOLATION` (SQLSTATE
 * 08P01), after which the decoder is `failed`.
 *
 * Complete frames inside one chunk are emitted as views (no copy); a frame that
 * spans chunks is assembled once into a buffer of exactly its (capped) size.
 *
 * @see https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
export class FrontendDecoder {
  private state: FrontendPhase = 'startup';
  private failure: AppError | null = null;
  private sslDone = false;
  private gssDone = false;
  /** Header bytes of a frame whose header spans chunks. */
  private readonly header = Buffer.alloc(TYPED_HEADER);
  private headerFill = 0;
  /** A frame being assembled across chunks (exact size), and how much of it is filled. */
  private partial: Buffer | null = null;
  private partialFill = 0;
  /** Max length word per type byte; 0 means "not a frontend message type". */
  private readonly maxByType = new Int32Array(256);
  private readonly minByType = new Int32Array(256);
  private readonly maxStartup: number;
  private readonly skipOversized: boolean;
  /** The cap on a Query's or Parse's length word (see {@link FrontendDecoderLimits.maxQueryLength}). */
  readonly maxQueryLength: number;
  /** The cap on a Bind's length word (see {@link FrontendDecoderLimits.maxBindLength}). */
  readonly maxBindLength: number;
  /** Bytes of an oversized statement still to skip, and what to report once they are. */
  private skipRemaining = 0;
  private skipped: { messageType: OversizedStatement['messageType']; length: number } | null = null;

  constructor(limits: Partial<FrontendDecoderLimits> = {}) {
    const l = { ...DEFAULT_FRONTEND_LIMITS, ...limits };
    this.maxStartup = positiveInt(l.maxStartupLength, 'maxStartupLength');
    this.skipOversized = l.skipOversizedStatements !== false;
    this.maxQueryLength = positiveInt(l.maxQueryLength, 'maxQueryLength');
    this.maxBindLength = positiveInt(l.maxBindLength, 'maxBindLength');
    const set = (code: number, min: number, max: number): void => {
      this.minByType[code] = min;
      this.maxByType[code] = max;
    };
    const control = positiveInt(l.maxControlLength, 'maxControlLength');
    set(FrontendCode.Query, 5, positiveInt(l.maxQueryLength, 'maxQueryLength'));
    set(FrontendCode.Parse, 4 + 4, positiveInt(l.maxQueryLength, 'maxQueryLength'));
    set(FrontendCode.Bind, 4 + 8, positiveInt(l.maxBindLength, 'maxBindLength'));
    set(FrontendCode.FunctionCall, 4 + 10, positiveInt(l.maxFunctionCallLength, 'maxFunctionCallLength'));
    set(FrontendCode.CopyData, 4, positiveInt(l.maxCopyDataLength, 'maxCopyDataLength'));
    set(FrontendCode.Password, 4, positiveInt(l.maxAuthLength, 'maxAuthLength'));
    set(FrontendCode.Execute, 4 + 5, control);
    set(FrontendCode.Describe, 4 + 2, control);
    set(FrontendCode.Close, 4 + 2, control);
    set(FrontendCode.CopyFail, 4 + 1, control);
    set(FrontendCode.Sync, 4, 4);
    set(FrontendCode.Flush, 4, 4);
    set(FrontendCode.Terminate, 4, 4);
    set(FrontendCode.CopyDone, 4, 4);
  }

  /** The current phase. */
  get phase(): FrontendPhase {
    return this.state;
  }

  /** The violation that failed the decoder, if any. */
  get error(): AppError | null {
    return this.failure;
  }

  /** Bytes held for a frame not yet complete (bounded by the caps). */
  get bufferedBytes(): number {
    if (this.skipRemaining > 0) return 0;
    return this.partial ? this.partialFill : this.headerFill;
  }

  /**
   * Call once the proxy has answered an SSLRequest ('S' then TLS established,
   * or 'N') or a GSSENCRequest ('N'): the decoder then expects startup-phase
   * packets again. Any byte received before this call is a violation (bytes
   * pipelined after an SSLRequest are never trusted, CVE-2021-23214).
   */
  negotiationAnswered(): void {
    if (this.state === 'negotiating') this.state = 'startup';
  }

  /**
   * Feeds bytes. Calls `onMessage` for each complete message in order, then
   * returns `null`, or the violation (the same one on every later call). The
   * decoder's cursor advances before `onMessage` runs; if `onMessage` throws,
   * the exception propagates and the remaining bytes of `chunk` are dropped.
   */
  write(chunk: Buffer, onMessage: FrontendMessageSink): AppError | null {
    if (this.failure) return this.failure;
    const n = chunk.length;
    let pos = 0;
    while (pos < n) {
      if (this.skipRemaining > 0) {
        const take = Math.min(n - pos, this.skipRemaining);
        pos += take;
        this.skipRemaining -= take;
        if (this.skipRemaining === 0) {
          const skipped = this.skipped as { messageType: OversizedStatement['messageType']; length: number };
          this.skipped = null;
          onMessage({ type: 'OversizedStatement', messageType: skipped.messageType, length: skipped.length, raw: EMPTY });
        }
        continue;
      }
      if (this.state !== 'startup' && this.state !== 'normal') {
        this.fail(
          this.state === 'negotiating'
            ? 'Data arrived before the encryption request was answered.'
            : 'Data arrived after a CancelRequest.',
        );
        return this.failure;
      }
      const partial = this.partial;
      if (partial) {
        const take = Math.min(n - pos, partial.length - this.partialFill);
        chunk.copy(partial, this.partialFill, pos, pos + take);
        this.partialFill += take;
        pos += take;
        if (this.partialFill === partial.length) {
          this.partial = null;
          this.partialFill = 0;
          if (!this.dispatch(partial, onMessage)) return this.failure;
        }
        continue;
      }
      const typed = this.state === 'normal';
      const headerSize = typed ? TYPED_HEADER : STARTUP_HEADER;
      if (this.headerFill > 0 || n - pos < headerSize) {
        const take = Math.min(n - pos, headerSize - this.headerFill);
        chunk.copy(this.header, this.headerFill, pos, pos + take);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < headerSize) continue;
        this.headerFill = 0;
        const total = this.frameSize(this.header, 0, typed);
        if (total === SKIP) {
          this.skipRemaining = this.skipTotal - headerSize;
          continue;
        }
        if (total < 0) return this.failure;
        const frame = Buffer.allocUnsafe(total);
        this.header.copy(frame, 0, 0, headerSize);
        if (total === headerSize) {
          if (!this.dispatch(frame, onMessage)) return this.failure;
        } else {
          this.partial = frame;
          this.partialFill = headerSize;
        }
        continue;
      }
      const total = this.frameSize(chunk, pos, typed);
      if (total === SKIP) {
        this.skipRemaining = this.skipTotal;
        continue;
      }
      if (total < 0) return this.failure;
      if (pos + total <= n) {
        const frame = chunk.subarray(pos, pos + total);
        pos += total;
        if (!this.dispatch(frame, onMessage)) return this.failure;
      } else {
        const frame = Buffer.allocUnsafe(total);
        chunk.copy(frame, 0, pos, n);
        this.partial = frame;
        this.partialFill = n - pos;
        pos = n;
      }
    }
    return null;
  }

  /** Validates a header at `buf[at]` and returns the whole frame's size, or -1 after failing. */
  private frameSize(buf: Buffer, at: number, typed: boolean): number {
    if (!typed) {
      const len = buf.readInt32BE(at);
      if (len < 8 || len > this.maxStartup) {
        this.fail('Invalid startup packet length.', { length: len });
        return -1;
      }
      return len;
    }
    const code = buf[at] as number;
    const len = buf.readInt32BE(at + 1);
    const max = this.maxByType[code] as number;
    if (max === 0) {
      this.fail('Invalid frontend message type.', { messageType: code });
      return -1;
    }
    const skippable = code === FrontendCode.Query || code === FrontendCode.Parse || code === FrontendCode.Bind;
    if (len > max && this.skipOversized && skippable && len <= PG_MAX_MESSAGE_LENGTH) {
      this.skipped = { messageType: code === FrontendCode.Query ? 'Query' : code === FrontendCode.Parse ? 'Parse' : 'Bind', length: len };
      this.skipTotal = len + 1;
      return SKIP;
    }
    if (len < (this.minByType[code] as number) || len > max) {
      this.fail('Invalid message length.', { messageType: String.fromCharCode(code), length: len });
      return -1;
    }
    return len + 1;
  }

  /** Whole size of the frame being skipped (set with {@link SKIP}). */
  private skipTotal = 0;

  private fail(message: string, meta?: Record<string, unknown>): void {
    this.failure = protocolViolation(message, meta);
    this.state = 'failed';
    this.skipRemaining = 0;
    this.skipped = null;
    this.partial = null;
    this.partialFill = 0;
    this.headerFill = 0;
  }

  /** Decodes one complete frame and hands it on; false after a violation. */
  private dispatch(frame: Buffer, onMessage: FrontendMessageSink): boolean {
    let message: FrontendMessage;
    try {
      message = this.state === 'normal' ? decodeTyped(frame) : this.decodeStartup(frame);
    } catch (err) {
      if (err instanceof MalformedBody) {
        this.fail(err.message, this.state === 'normal' ? { messageType: String.fromCharCode(frame[0] as number) } : undefined);
        return false;
      }
      throw err;
    }
    if (this.failure) return false;
    onMessage(message);
    return true;
  }

  private decodeStartup(frame: Buffer): FrontendMessage {
    const code = frame.readInt32BE(4);
    const len = frame.length;
    if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
      const isSsl = code === SSL_REQUEST_CODE;
      if (len !== 8) throw new MalformedBody('Invalid encryption request length.');
      if (isSsl ? this.sslDone : this.gssDone) throw new MalformedBody('Repeated encryption request.');
      if (isSsl) this.sslDone = true;
      else this.gssDone = true;
      this.state = 'negotiating';
      return isSsl ? { type: 'SSLRequest', raw: frame } : { type: 'GSSENCRequest', raw: frame };
    }
    if (code === CANCEL_REQUEST_CODE) {
      const keyLength = len - 12;
      if (keyLength < MIN_CANCEL_KEY_LENGTH || keyLength > MAX_CANCEL_KEY_LENGTH) {
        throw new MalformedBody('Invalid CancelRequest length.');
      }
      this.state = 'ended';
      const message: CancelRequest = {
        type: 'CancelRequest',
        processId: frame.readInt32BE(8),
        secretKey: frame.subarray(12),
        raw: frame,
      };
      return message;
    }
    const major = code >>> 16;
    const minor = code & 0xffff;
    if (major !== PROTOCOL_MAJOR) throw new MalformedBody('Unsupported frontend protocol version.');
    const r = new BodyReader(frame.subarray(8));
    const parameters = new Map<string, string>();
    for (;;) {
      const name = r.cstring();
      if (name === '') break;
      const value = r.cstring();
      if (parameters.has(name)) throw new MalformedBody('Duplicate startup parameter.');
      parameters.set(name, value);
    }
    r.end();
    this.state = 'normal';
    const message: StartupMessage = { type: 'StartupMessage', protocolVersion: { major, minor }, parameters, raw: frame };
    return message;
  }
}

const readTarget = (r: BodyReader): 'S' | 'P' => {
  const t = r.int8();
  if (t === 0x53) return 'S';
  if (t === 0x50) return 'P';
  throw new MalformedBody('Invalid Describe/Close target.');
};

/** Reads a count (uint16) followed by that many int16 format codes. */
const readFormats = (r: BodyReader): number[] => {
  const count = r.uint16();
  if (count * 2 > r.remaining) throw new MalformedBody('Message is too short.');
  const formats = new Array<number>(count);
  for (let i = 0; i < count; i += 1) formats[i] = r.int16();
  return formats;
};

/** Reads a count (uint16) followed by that many length-prefixed values (-1 = NULL). */
const readValues = (r: BodyReader): (Buffer | null)[] => {
  const count = r.uint16();
  if (count * 4 > r.remaining) throw new MalformedBody('Message is too short.');
  const values = new Array<Buffer | null>(count);
  for (let i = 0; i < count; i += 1) {
    const len = r.int32();
    if (len === -1) values[i] = null;
    else if (len < 0) throw new MalformedBody('Invalid parameter length.');
    else values[i] = r.bytes(len);
  }
  return values;
};

/** Decodes one typed frame (type byte, length word, body) whose header was validated. */
const decodeTyped = (raw: Buffer): FrontendMessage => {
  const code = raw[0] as number;
  const body = raw.subarray(TYPED_HEADER);
  switch (code) {
    case FrontendCode.Query: {
      const r = new BodyReader(body);
      const sql = r.cstring();
      r.end();
      return { type: 'Query', sql, raw };
    }
    case FrontendCode.Parse: {
      const r = new BodyReader(body);
      const name = r.cstring();
      const sql = r.cstring();
      const count = r.uint16();
      if (count * 4 !== r.remaining) throw new MalformedBody('Invalid Parse parameter types.');
      const paramTypes = new Array<number>(count);
      for (let i = 0; i < count; i += 1) paramTypes[i] = r.uint32();
      const message: Parse = { type: 'Parse', name, sql, paramTypes, raw };
      return message;
    }
    case FrontendCode.Bind: {
      const r = new BodyReader(body);
      const portal = r.cstring();
      const statement = r.cstring();
      const paramFormats = readFormats(r);
      const params = readValues(r);
      const resultFormats = readFormats(r);
      r.end();
      const message: Bind = { type: 'Bind', portal, statement, paramFormats, params, resultFormats, raw };
      return message;
    }
    case FrontendCode.Execute: {
      const r = new BodyReader(body);
      const portal = r.cstring();
      const maxRows = r.int32();
      r.end();
      const message: Execute = { type: 'Execute', portal, maxRows, raw };
      return message;
    }
    case FrontendCode.Describe:
    case FrontendCode.Close: {
      const r = new BodyReader(body);
      const target = readTarget(r);
      const name = r.cstring();
      r.end();
      const message: Describe | Close = { type: code === FrontendCode.Describe ? 'Describe' : 'Close', target, name, raw };
      return message;
    }
    case FrontendCode.Sync:
      return { type: 'Sync', raw };
    case FrontendCode.Flush:
      return { type: 'Flush', raw };
    case FrontendCode.Terminate:
      return { type: 'Terminate', raw };
    case FrontendCode.CopyDone:
      return { type: 'CopyDone', raw };
    case FrontendCode.CopyData:
      return { type: 'CopyData', data: body, raw };
    case FrontendCode.CopyFail: {
      const r = new BodyReader(body);
      const message = r.cstring();
      r.end();
      return { type: 'CopyFail', message, raw };
    }
    case FrontendCode.Password:
      return { type: 'AuthenticationResponse', body, raw };
    case FrontendCode.FunctionCall: {
      const r = new BodyReader(body);
      const functionOid = r.uint32();
      const argFormats = readFormats(r);
      const args = readValues(r);
      const resultFormat = r.int16();
      r.end();
      const message: FunctionCall = { type: 'FunctionCall', functionOid, argFormats, args, resultFormat, raw };
      return message;
    }
    default:
      // Unreachable: frameSize admits only the codes above.
      throw new MalformedBody('Invalid frontend message type.');
  }
};
