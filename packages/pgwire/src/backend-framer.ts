import { AppError } from '@pa/kit';
import { BodyReader, MalformedBody } from './body-reader';
import { BackendCode, MAX_CANCEL_KEY_LENGTH, MIN_CANCEL_KEY_LENGTH, type TransactionStatus } from './protocol-codes';
import { backendProtocolViolation } from './protocol-error';

/** Options of {@link BackendFramer}. */
export interface BackendFramerOptions {
  /**
   * Cap on any message's length word. Default 1 GiB, PostgreSQL's own
   * `MaxAllocSize` for an outgoing message. Bodies of messages not inspected
   * are never buffered, so this bounds sanity, not memory.
   */
  readonly maxMessageLength?: number;
  /**
   * Message types whose whole frame is collected and handed over (`raw`,
   * `body`), or `'all'`. Default {@link DEFAULT_INSPECTED_TYPES}.
   */
  readonly inspect?: Iterable<number> | 'all';
  /** Cap on the length word of an inspected message (it is buffered). Default 1 MiB. */
  readonly maxInspectedLength?: number;
}

/**
 * Types the proxy needs to see by default: authentication, key data,
 * parameter changes, ready-for-query status, command tags, errors, protocol
 * negotiation and copy-mode entry. DataRow, CopyData, RowDescription, notices
 * and notifications pass by without being buffered.
 */
export const DEFAULT_INSPECTED_TYPES: readonly number[] = [
  BackendCode.Authentication,
  BackendCode.BackendKeyData,
  BackendCode.ParameterStatus,
  BackendCode.ReadyForQuery,
  BackendCode.CommandComplete,
  BackendCode.ErrorResponse,
  BackendCode.NegotiateProtocolVersion,
  BackendCode.CopyInResponse,
  BackendCode.CopyOutResponse,
  BackendCode.CopyBothResponse,
];

/** One backend message boundary, as reported by {@link BackendFramer}. */
export interface BackendFrame {
  /** The type byte. */
  readonly type: number;
  /** The length word (body length + 4). */
  readonly length: number;
  /** Offset in the chunk being pushed just past the message's last byte (forward `chunk.subarray(0, end)` to cut there). */
  readonly end: number;
  /** The whole frame (type byte, length, body) for inspected types; null otherwise. */
  readonly raw: Buffer | null;
  /** The body (a view of `raw`) for inspected types; null otherwise. */
  readonly body: Buffer | null;
}

/** Receives each backend message boundary in order. */
export type BackendFrameSink = (frame: BackendFrame) => void;

const KNOWN_BACKEND_TYPES: readonly number[] = Object.values(BackendCode);

/** Lengths that are fixed by the protocol: [min, max] of the length word. */
const FIXED_LENGTHS: ReadonlyMap<number, readonly [number, number]> = new Map<number, readonly [number, number]>([
  [BackendCode.ReadyForQuery, [5, 5]],
  [BackendCode.BindComplete, [4, 4]],
  [BackendCode.CloseComplete, [4, 4]],
  [BackendCode.ParseComplete, [4, 4]],
  [BackendCode.NoData, [4, 4]],
  [BackendCode.EmptyQueryResponse, [4, 4]],
  [BackendCode.PortalSuspended, [4, 4]],
  [BackendCode.CopyDone, [4, 4]],
  [BackendCode.BackendKeyData, [8 + MIN_CANCEL_KEY_LENGTH, 8 + MAX_CANCEL_KEY_LENGTH]],
  [BackendCode.Authentication, [8, 0x7fffffff]],
]);

/**
 * A cheap framer for the backend stream (backend → proxy). It finds message
 * boundaries without copying, so the proxy can forward chunks as they came
 * (or cut them at `end`) while still seeing every message type; only the
 * inspected types are collected (a view when inside one chunk, one capped copy
 * when split). Lengths are checked against caps and per-type fixed sizes, and
 * unknown types are refused; a violation is returned as an AppError
 * `PG_BACKEND_PROTOCOL_VIOLATION`, after which the framer stays failed.
 * It never throws on input.
 *
 * @see https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
 */
export class BackendFramer {
  private readonly maxLength: number;
  private readonly maxInspected: number;
  private readonly inspected = new Uint8Array(256);
  private readonly known = new Uint8Array(256);
  private readonly minLen = new Int32Array(256);
  private readonly maxLen = new Int32Array(256);
  private failure: AppError | null = null;
  private readonly header = Buffer.alloc(5);
  private headerFill = 0;
  /** Message in progress: its type, length word and the body bytes still to come. */
  private type = -1;
  private length = 0;
  private remaining = 0;
  /** Collected frame of an inspected message split across chunks. */
  private collect: Buffer | null = null;
  private collectFill = 0;

  constructor(options: BackendFramerOptions = {}) {
    this.maxLength = options.maxMessageLength ?? 0x40000000;
    this.maxInspected = options.maxInspectedLength ?? 1024 * 1024;
    const inspect = options.inspect ?? DEFAULT_INSPECTED_TYPES;
    for (const t of KNOWN_BACKEND_TYPES) {
      this.known[t] = 1;
      const fixed = FIXED_LENGTHS.get(t);
      this.minLen[t] = fixed ? fixed[0] : 4;
      this.maxLen[t] = fixed ? fixed[1] : 0x7fffffff;
      if (inspect === 'all') this.inspected[t] = 1;
    }
    if (inspect !== 'all') for (const t of inspect) this.inspected[t & 0xff] = 1;
  }

  /** The violation that failed the framer, if any. */
  get error(): AppError | null {
    return this.failure;
  }

  /** True when the stream is at a message boundary (nothing partial). */
  get isAtBoundary(): boolean {
    return this.type < 0 && this.headerFill === 0;
  }

  /**
   * Feeds bytes; calls `onFrame` for each message that completes in `chunk`,
   * then returns null, or the violation.
   */
  push(chunk: Buffer, onFrame: BackendFrameSink): AppError | null {
    if (this.failure) return this.failure;
    const n = chunk.length;
    let pos = 0;
    while (pos < n) {
      if (this.type >= 0) {
        // Inside a message body.
        const take = Math.min(n - pos, this.remaining);
        if (this.collect) {
          chunk.copy(this.collect, this.collectFill, pos, pos + take);
          this.collectFill += take;
        }
        pos += take;
        this.remaining -= take;
        if (this.remaining === 0) {
          const raw = this.collect;
          const type = this.type;
          this.collect = null;
          this.type = -1;
          onFrame({ type, length: this.length, end: pos, raw, body: raw ? raw.subarray(5) : null });
        }
        continue;
      }
      if (this.headerFill > 0 || n - pos < 5) {
        const take = Math.min(n - pos, 5 - this.headerFill);
        chunk.copy(this.header, this.headerFill, pos, pos + take);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < 5) continue;
        this.headerFill = 0;
        if (!this.begin(this.header[0] as number, this.header.readInt32BE(1))) return this.failure;
        if (this.collect) {
          this.header.copy(this.collect, 0);
          this.collectFill = 5;
        }
        if (this.remaining === 0) {
          const raw = this.collect;
          this.collect = null;
          this.type = -1;
          onFrame({ type: this.header[0] as number, length: this.length, end: pos, raw, body: raw ? raw.subarray(5) : null });
        }
        continue;
      }
      const type = chunk[pos] as number;
      const length = chunk.readInt32BE(pos + 1);
      if (!this.validate(type, length)) return this.failure;
      const total = length + 1;
      if (pos + total <= n) {
        const start = pos;
        pos += total;
        const raw = this.inspected[type] ? chunk.subarray(start, pos) : null;
        onFrame({ type, length, end: pos, raw, body: raw ? raw.subarray(5) : null });
        continue;
      }
      // Split message: remember it and, if inspected, start collecting.
      this.begin(type, length);
      const take = n - pos;
      if (this.collect) {
        chunk.copy(this.collect, 0, pos, n);
        this.collectFill = take;
      }
      this.remaining = total - take;
      pos = n;
    }
    return null;
  }

  private validate(type: number, length: number): boolean {
    if (!this.known[type]) {
      this.fail('Unknown backend message type.', type);
      return false;
    }
    const max = Math.min(this.inspected[type] ? this.maxInspected : this.maxLength, this.maxLen[type] as number);
    if (length < (this.minLen[type] as number) || length > max) {
      this.fail('Invalid backend message length.', type);
      return false;
    }
    return true;
  }

  /** Starts a message from its header; the body (length - 4 bytes) follows. */
  private begin(type: number, length: number): boolean {
    if (!this.validate(type, length)) return false;
    this.type = type;
    this.length = length;
    this.remaining = length - 4;
    this.collect = this.inspected[type] ? Buffer.allocUnsafe(length + 1) : null;
    this.collectFill = 0;
    return true;
  }

  private fail(message: string, type: number): void {
    this.failure = new AppError('PG_BACKEND_PROTOCOL_VIOLATION', { message, meta: { messageType: type } });
    this.collect = null;
    this.type = -1;
  }
}

/** The outcome of reading a backend message body: a value, or a violation. */
export type BackendRead<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: AppError };

const readBody = <T>(body: Buffer, fn: (r: BodyReader) => T): BackendRead<T> => {
  try {
    const r = new BodyReader(body, false);
    const value = fn(r);
    r.end();
    return { ok: true, value };
  } catch (err) {
    if (err instanceof MalformedBody) return { ok: false, error: backendProtocolViolation(err.message) };
    throw err;
  }
};

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-READYFORQUERY */
export const readReadyForQuery = (body: Buffer): BackendRead<TransactionStatus> =>
  readBody(body, (r) => {
    const s = String.fromCharCode(r.int8());
    if (s !== 'I' && s !== 'T' && s !== 'E') throw new MalformedBody('Invalid transaction status.');
    return s;
  });

/** The command tag, e.g. `INSERT 0 1`. @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COMMANDCOMPLETE */
export const readCommandComplete = (body: Buffer): BackendRead<string> => readBody(body, (r) => r.cstring());

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARAMETERSTATUS */
export const readParameterStatus = (body: Buffer): BackendRead<{ readonly name: string; readonly value: string }> =>
  readBody(body, (r) => ({ name: r.cstring(), value: r.cstring() }));

/** A backend's cancel key. */
export interface BackendKey {
  readonly processId: number;
  readonly secretKey: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BACKENDKEYDATA */
export const readBackendKeyData = (body: Buffer): BackendRead<BackendKey> =>
  readBody(body, (r) => {
    const processId = r.int32();
    const secretKey = Buffer.from(r.rest());
    if (secretKey.length < MIN_CANCEL_KEY_LENGTH || secretKey.length > MAX_CANCEL_KEY_LENGTH) {
      throw new MalformedBody('Invalid cancel key length.');
    }
    return { processId, secretKey };
  });

/**
 * Fields of an ErrorResponse or NoticeResponse, by field code.
 *
 * @see https://www.postgresql.org/docs/current/protocol-error-fields.html
 */
export interface BackendNotice {
  /** `V` (non-localised) or else `S`. */
  readonly severity: string;
  /** SQLSTATE (`C`). */
  readonly code: string;
  /** `M`. */
  readonly message: string;
  /** Every field by its one-letter code. */
  readonly fields: ReadonlyMap<string, string>;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-ERRORRESPONSE */
export const readErrorResponse = (body: Buffer): BackendRead<BackendNotice> =>
  readBody(body, (r) => {
    const fields = new Map<string, string>();
    for (;;) {
      const code = r.int8();
      if (code === 0) break;
      fields.set(String.fromCharCode(code), r.cstring());
    }
    return {
      severity: fields.get('V') ?? fields.get('S') ?? '',
      code: fields.get('C') ?? '',
      message: fields.get('M') ?? '',
      fields,
    };
  });

/** An Authentication ('R') request: its sub-code and the bytes that follow. */
export interface AuthenticationRequest {
  readonly code: number;
  readonly data: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONOK */
export const readAuthentication = (body: Buffer): BackendRead<AuthenticationRequest> =>
  readBody(body, (r) => ({ code: r.int32(), data: r.rest() }));

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-NEGOTIATEPROTOCOLVERSION */
export const readNegotiateProtocolVersion = (
  body: Buffer,
): BackendRead<{ readonly newestMinor: number; readonly unrecognizedOptions: readonly string[] }> =>
  readBody(body, (r) => {
    const newestMinor = r.int32();
    const count = r.int32();
    if (count < 0 || count > r.remaining) throw new MalformedBody('Invalid option count.');
    const unrecognizedOptions: string[] = [];
    for (let i = 0; i < count; i += 1) unrecognizedOptions.push(r.cstring());
    return { newestMinor, unrecognizedOptions };
  });
