import { AppError } from '@pa/kit';
import {
  BackendCode,
  BackendFramer,
  checkBackendParameter,
  readCommandComplete,
  readErrorResponse,
  readParameterStatus,
  type BackendFrame,
  type TransactionStatus,
} from '@pa/pgwire';
import { POISON_SQLSTATE } from './wire';

/**
 * The backend → client direction, kept as close to a byte pipe as the
 * protocol allows: chunks are forwarded as they came (views, no copy), while
 * {@link BackendFramer} reports every message boundary so that the proxy can
 *
 * - replace the ErrorResponse its own poison statement provoked with the
 *   refusal it stands for (42501, 53400, 58000);
 * - follow ReadyForQuery (transaction status, the end of each sync unit),
 *   CommandComplete tags and ErrorResponse SQLSTATEs, to close each audited
 *   statement with its outcome (tags, rows, SQLSTATE, bytes, duration);
 * - check every ParameterStatus (an unsafe client_encoding or
 *   standard_conforming_strings ends the session before the message reaches
 *   the client);
 * - refuse messages a backend may not send after startup.
 *
 * Only ErrorResponse and ParameterStatus frames are ever held back (when split
 * across reads, their first bytes wait for the rest, so a frame to be replaced
 * or refused never leaks half-way); everything else streams.
 *
 * No I/O: {@link BackendStream.push} returns the slices to write to the client.
 *
 * Sync units: every message the proxy forwards that ends in a ReadyForQuery
 * (Query, Sync, FunctionCall, and a poison Query) opens a new unit; what
 * happens between the n-th and the (n+1)-th ReadyForQuery belongs to unit n.
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html
 */

/** One audited execution, as the response side sees it. */
export interface TrackedAction {
  /** Statement number within the session (shared with its decision record). */
  readonly seq: number;
  /** When it was forwarded (`process.hrtime.bigint()`). */
  readonly startedAt: bigint;
  readonly tags: string[];
  /** SQLSTATE of the ErrorResponse that ended it, if any. */
  sqlstate: string | null;
  /** Backend bytes relayed to the client while it ran. */
  bytes: number;
  done: boolean;
}

/** How an audited execution ended. */
export type ActionEnd = 'completed' | 'failed' | 'skipped' | 'suspended';

interface Expectation {
  /** `query`: every completion until ReadyForQuery; `execute`: exactly one completion. */
  readonly kind: 'query' | 'execute';
  readonly unit: number;
  readonly action: TrackedAction | null;
}

interface Poison {
  readonly unit: number;
  readonly token: string;
  readonly replacement: Buffer;
}

/** Callbacks of a {@link BackendStream}. */
export interface BackendStreamEvents {
  /** An audited execution ended. */
  onActionEnd(action: TrackedAction, end: ActionEnd): void;
  /** A ParameterStatus the client will see (after the safety check). */
  onParameter?(name: string, value: string): void;
  /** Every ErrorResponse from the backend (severity as sent in field V/S). */
  onBackendError?(severity: string, sqlstate: string): void;
}

// Type bytes as plain constants: read once, not through the package's export getters on every frame.
const {
  Authentication: AUTHENTICATION,
  BackendKeyData: BACKEND_KEY_DATA,
  CommandComplete: COMMAND_COMPLETE,
  CopyBothResponse: COPY_BOTH_RESPONSE,
  DataRow: DATA_ROW,
  EmptyQueryResponse: EMPTY_QUERY_RESPONSE,
  ErrorResponse: ERROR_RESPONSE,
  FunctionCallResponse: FUNCTION_CALL_RESPONSE,
  NegotiateProtocolVersion: NEGOTIATE_PROTOCOL_VERSION,
  ParameterStatus: PARAMETER_STATUS,
  PortalSuspended: PORTAL_SUSPENDED,
  ReadyForQuery: READY_FOR_QUERY,
} = BackendCode;

const EMPTY = Buffer.alloc(0);
const NO_OUT: Buffer[] = [];

const HOLD = new Uint8Array(256);
HOLD[BackendCode.ErrorResponse] = 1;
HOLD[BackendCode.ParameterStatus] = 1;

const INSPECT = [
  BackendCode.ParameterStatus,
  BackendCode.ReadyForQuery,
  BackendCode.CommandComplete,
  BackendCode.ErrorResponse,
];

/** See the file comment. */
export class BackendStream {
  private readonly framer = new BackendFramer({ inspect: INSPECT });
  private readonly events: BackendStreamEvents;
  /** Units opened by forwarded messages, and units closed by ReadyForQuery. */
  private unitsForwarded = 0;
  private unitsSeen = 0;
  private readonly expectations: Expectation[] = [];
  private expectHead = 0;
  private readonly poisons: Poison[] = [];
  /** The first bytes of a held frame (ErrorResponse, ParameterStatus) split across reads. */
  private held: Buffer[] | null = null;
  /** Type byte of the message in progress at the end of the last chunk. */
  private partialType = -1;
  private status: TransactionStatus;

  constructor(events: BackendStreamEvents, initialStatus: TransactionStatus = 'I') {
    this.events = events;
    this.status = initialStatus;
  }

  /** Transaction status of the last ReadyForQuery. */
  get transactionStatus(): TransactionStatus {
    return this.status;
  }

  /** Whether the backend still owes answers (a statement runs or a unit is open). */
  get isBusy(): boolean {
    return this.unitsSeen < this.unitsForwarded || this.expectHead < this.expectations.length;
  }

  /** Audited executions still waiting for their end. */
  pendingActions(): TrackedAction[] {
    const out: TrackedAction[] = [];
    for (let i = this.expectHead; i < this.expectations.length; i += 1) {
      const a = (this.expectations[i] as Expectation).action;
      if (a && !a.done) out.push(a);
    }
    return out;
  }

  /** A Query was forwarded (`action` is its audit record). */
  forwardedQuery(action: TrackedAction): void {
    this.expectations.push({ kind: 'query', unit: this.unitsForwarded, action });
    this.unitsForwarded += 1;
  }

  /** A FunctionCall was forwarded: one completion (FunctionCallResponse), then ReadyForQuery. */
  forwardedFunctionCall(action: TrackedAction): void {
    this.forwardedQuery(action);
  }

  /** An Execute was forwarded; `action` is the execution its portal belongs to (null for a continued or unknown portal). */
  forwardedExecute(action: TrackedAction | null): void {
    this.expectations.push({ kind: 'execute', unit: this.unitsForwarded, action: action && !action.done ? action : null });
  }

  /** A Sync was forwarded. */
  forwardedSync(): void {
    this.unitsForwarded += 1;
  }

  /**
   * A poison statement was forwarded in place of a refused message: its
   * ErrorResponse will be replaced by `replacement`. `simple` poisons are a
   * Query of their own (one unit); extended ones are a Parse inside the
   * current unit, and vanish if an earlier message of the unit failed (the
   * backend then skips to Sync, as it would have for the refused message).
   */
  forwardedPoison(token: string, replacement: Buffer, simple: boolean): void {
    this.poisons.push({ unit: this.unitsForwarded, token, replacement });
    if (simple) this.unitsForwarded += 1;
  }

  /**
   * Feeds one chunk from the backend; pushes the slices to write to the
   * client onto `out`. Returns an error when the session must end (backend
   * protocol violation, unsafe parameter change); nothing of the offending
   * message is forwarded then.
   */
  push(chunk: Buffer, out: Buffer[]): AppError | null {
    const wasAtBoundary = this.framer.isAtBoundary;
    this.chunk = chunk;
    this.out = out;
    this.cursor = 0;
    this.completedAny = false;
    this.lastEnd = 0;
    this.failure = null;
    const err = this.framer.push(chunk, this.onFrame);
    const failure = this.failure as AppError | null;
    const cursor = this.cursor;
    const lastEnd = this.lastEnd;
    const completedAny = this.completedAny;
    this.chunk = EMPTY;
    this.out = NO_OUT;
    if (failure) return failure;
    if (err) return err;
    if (!this.framer.isAtBoundary) {
      const startsHere = completedAny || wasAtBoundary;
      if (startsHere) this.partialType = chunk[lastEnd] as number;
      if (HOLD[this.partialType]) {
        if (startsHere) {
          if (lastEnd > cursor) out.push(chunk.subarray(cursor, lastEnd));
          this.held = [Buffer.from(chunk.subarray(lastEnd))];
        } else {
          (this.held ??= []).push(Buffer.from(chunk));
        }
        return null;
      }
    }
    if (cursor < chunk.length) out.push(cursor === 0 ? chunk : chunk.subarray(cursor));
    return null;
  }

  // State of the push in progress (kept on the instance so no closure is made per chunk).
  private chunk: Buffer = EMPTY;
  private out: Buffer[] = NO_OUT;
  private cursor = 0;
  private completedAny = false;
  private lastEnd = 0;
  private failure: AppError | null = null;

  private readonly onFrame = (f: BackendFrame): void => {
    if (this.failure) return;
    const start = f.end - f.length - 1;
    this.completedAny = true;
    this.lastEnd = f.end;
    if (f.type === DATA_ROW) {
      // The bulk of a result: only counted.
      const head = this.expectHead < this.expectations.length ? (this.expectations[this.expectHead] as Expectation) : undefined;
      if (head?.action) head.action.bytes += f.length + 1;
      if (start < 0 && this.held) this.releaseHeld();
      return;
    }
    const replacement = this.frame(f);
    if (replacement instanceof Error) {
      this.failure = replacement;
      if (start > this.cursor) this.out.push(this.chunk.subarray(this.cursor, start));
      this.cursor = this.chunk.length;
      this.held = null;
      return;
    }
    if (replacement !== undefined) {
      if (start > this.cursor) this.out.push(this.chunk.subarray(this.cursor, start));
      if (replacement.length > 0) this.out.push(replacement);
      this.cursor = f.end;
      this.held = null;
    } else if (start < 0 && this.held) {
      this.releaseHeld();
    }
  };

  private releaseHeld(): void {
    for (const h of this.held as Buffer[]) this.out.push(h);
    this.held = null;
  }

  /** Handles one message; returns bytes to send instead of it, an error to end the session, or undefined to pass it. */
  private frame(f: BackendFrame): Buffer | AppError | undefined {
    const head = this.expectHead < this.expectations.length ? (this.expectations[this.expectHead] as Expectation) : undefined;
    if (head?.action) head.action.bytes += f.length + 1;
    switch (f.type) {
      case COMMAND_COMPLETE:
      case EMPTY_QUERY_RESPONSE:
      case PORTAL_SUSPENDED:
      case FUNCTION_CALL_RESPONSE: {
        if (!head || head.unit !== this.unitsSeen) return undefined;
        if (f.type === COMMAND_COMPLETE && head.action) {
          const r = readCommandComplete(f.body as Buffer);
          if (!r.ok) return r.error;
          head.action.tags.push(r.value);
        }
        if (head.kind === 'execute') {
          this.expectHead += 1;
          if (head.action) this.end(head.action, f.type === PORTAL_SUSPENDED ? 'suspended' : 'completed');
          this.compact();
        }
        return undefined;
      }
      case ERROR_RESPONSE:
        return this.error(f, head);
      case READY_FOR_QUERY: {
        // Its length is fixed (the framer checked it): one status byte.
        const status = String.fromCharCode((f.body as Buffer)[0] as number);
        if (status !== 'I' && status !== 'T' && status !== 'E') return protocolViolationFromBackend('Invalid transaction status.');
        this.status = status;
        this.unitsSeen += 1;
        if (this.unitsSeen > this.unitsForwarded) return protocolViolationFromBackend('ReadyForQuery without a pending request.');
        while (this.expectHead < this.expectations.length) {
          const e = this.expectations[this.expectHead] as Expectation;
          if (e.unit >= this.unitsSeen) break;
          this.expectHead += 1;
          if (e.action && !e.action.done) {
            this.end(e.action, e.kind === 'query' ? (e.action.sqlstate ? 'failed' : 'completed') : 'skipped');
          }
        }
        while (this.poisons.length > 0 && (this.poisons[0] as Poison).unit < this.unitsSeen) this.poisons.shift();
        this.compact();
        return undefined;
      }
      case PARAMETER_STATUS: {
        const r = readParameterStatus(f.body as Buffer);
        if (!r.ok) return r.error;
        const unsafe = checkBackendParameter(r.value.name, r.value.value);
        if (unsafe) return unsafe;
        this.events.onParameter?.(r.value.name, r.value.value);
        return undefined;
      }
      case AUTHENTICATION:
      case BACKEND_KEY_DATA:
      case NEGOTIATE_PROTOCOL_VERSION:
      case COPY_BOTH_RESPONSE:
        return protocolViolationFromBackend('Unexpected message from the database server.');
      default:
        return undefined;
    }
  }

  private error(f: BackendFrame, head: Expectation | undefined): Buffer | AppError | undefined {
    const r = readErrorResponse(f.body as Buffer);
    if (!r.ok) return r.error;
    this.events.onBackendError?.(r.value.severity, r.value.code);
    const poison = this.poisons[0];
    if (poison && poison.unit === this.unitsSeen && r.value.code === POISON_SQLSTATE && r.value.message.includes(poison.token)) {
      this.poisons.shift();
      return poison.replacement;
    }
    if (head && head.unit === this.unitsSeen && head.action) {
      head.action.sqlstate ??= r.value.code;
      if (head.kind === 'execute') {
        this.expectHead += 1;
        this.end(head.action, 'failed');
        this.compact();
      }
    }
    return undefined;
  }

  private end(action: TrackedAction, how: ActionEnd): void {
    action.done = true;
    this.events.onActionEnd(action, how);
  }

  private compact(): void {
    if (this.expectHead > 64 && this.expectHead * 2 > this.expectations.length) {
      this.expectations.splice(0, this.expectHead);
      this.expectHead = 0;
    } else if (this.expectHead === this.expectations.length) {
      this.expectations.length = 0;
      this.expectHead = 0;
    }
  }
}

const protocolViolationFromBackend = (message: string): AppError => new AppError('PG_BACKEND_PROTOCOL_VIOLATION', { message });
