import { join } from 'node:path';
import { AppError, createNullLogger, zodProblems, type Logger } from '@pa/kit';
import { auditEventProblem, auditEventSchema, type AuditEvent } from './audit-event';
import { encodeJsonRecord, encodeRecord, probeRecord, scanRecords } from './record-codec';
import { errorCode, hasCode, nodeSpoolFs, type SpoolFileHandle, type SpoolFs } from './spool-fs';
import { systemTimers, type AuditTimers } from './timers';

const MIB = 1024 * 1024;

/** Defaults of {@link AuditSpoolOptions}. */
export const AUDIT_SPOOL_DEFAULTS = {
  capacityBytes: 256 * MIB,
  admissionHeadroomBytes: 64 * 1024,
  segmentBytes: 8 * MIB,
  maxRecordBytes: 1 * MIB,
  groupCommitWindowMs: 2,
  groupCommitMaxEvents: 256,
  retryAfterMs: 1000,
} as const;

/** Configuration and dependencies of an {@link AuditSpool}. */
export interface AuditSpoolOptions {
  /** Directory holding the segment and ack files; created when missing. One spool per directory. */
  dir: string;
  /**
   * Bound on unacknowledged data (framed bytes of events accepted but not yet
   * acknowledged by the control plane). An append that would pass it is refused.
   */
  capacityBytes?: number;
  /**
   * Free space {@link AuditSpool.canAccept} keeps in reserve, so that the outcome
   * events of actions already admitted still fit after new ones are refused.
   */
  admissionHeadroomBytes?: number;
  /** A segment file is sealed and a new one begun once it reaches this size. */
  segmentBytes?: number;
  /** Largest serialised event accepted (payload bytes). */
  maxRecordBytes?: number;
  /** How long the first append of a group waits for others to share its write and fsync. */
  groupCommitWindowMs?: number;
  /** A group is committed at once when this many events are waiting. */
  groupCommitMaxEvents?: number;
  /** After a disk error the spool refuses appends for this long, then tries again. */
  retryAfterMs?: number;
  /**
   * When `append` resolves. `durable` (default): once its events are written
   * and fdatasync'd. `written`: once they are written to the segment file (in
   * the kernel's page cache, so they survive the process being killed); the
   * fdatasync follows in the background, shared by every append in its group.
   * A failed fdatasync then loses the group's events, which is logged and
   * counted (`lostEvents`). See README.md beside this file.
   */
  durability?: AuditSpoolDurability;
  fs?: SpoolFs;
  timers?: AuditTimers;
  logger?: Logger;
}

/** When `append` resolves: see {@link AuditSpoolOptions.durability}. */
export type AuditSpoolDurability = 'durable' | 'written';

/** Counters and levels of a spool, for metrics and readiness. */
export interface AuditSpoolStats {
  /** Durable events not yet acknowledged. */
  readonly pendingEvents: number;
  /** Framed bytes of those events. */
  readonly pendingBytes: number;
  /** Events accepted by `append` that are not durable yet. */
  readonly queuedEvents: number;
  readonly queuedBytes: number;
  readonly capacityBytes: number;
  /** Segment files on disk. */
  readonly segments: number;
  /** Bytes of segment files on disk (acknowledged records included until their segment goes). */
  readonly diskBytes: number;
  /** fdatasync calls made for appends (each shared by a group). */
  readonly fsyncs: number;
  /** Appends refused (full or unwritable). */
  readonly refusals: number;
  /** Records found unreadable when read back for shipping, and dropped. */
  readonly droppedRecords: number;
  /** Events whose append had resolved (`written` durability) but whose fdatasync failed. */
  readonly lostEvents: number;
  /** False while the spool refuses appends after a disk error. */
  readonly isWritable: boolean;
}

/** Whether a spool admits new work now, and if not, why. */
export type AuditAdmission = 'ok' | 'full' | 'unavailable';

/** What the shipper needs from a spool. */
/** An event as spooled: its id and the record's payload, the UTF-8 JSON of the whole event. */
export interface SpooledEvent {
  readonly id: string;
  readonly json: Buffer;
}

export interface AuditSpoolReader {
  readUnacked(maxEvents: number): Promise<AuditEvent[]>;
  /** As {@link readUnacked}, without decoding: each record's JSON as stored (its CRC and id checked). */
  readUnackedSpooled(maxEvents: number): Promise<SpooledEvent[]>;
  ack(eventIds: Iterable<string>): Promise<void>;
  /** Calls `listener` whenever new events become durable; returns the unsubscribe function. */
  onDurable(listener: () => void): () => void;
  /** Resolves when every event accepted so far is durable (or refused). */
  settle(): Promise<void>;
  stats(): AuditSpoolStats;
}

interface Segment {
  readonly seq: number;
  readonly path: string;
  readonly ackPath: string;
  /** Durable records in file order. */
  readonly records: RecordRef[];
  unacked: number;
  /** Records before this index are all acknowledged. */
  scanFrom: number;
  /** Bytes of durable records. */
  size: number;
  /** Write position: `size` plus records written at append time and not yet fdatasync'd. */
  written: number;
  /** A write to it failed: nothing more is written to it; it is cut back to `size` and sealed. */
  broken: boolean;
  /** Write handle; only the active segment has one. */
  fh: SpoolFileHandle | undefined;
  sealed: boolean;
  removed: boolean;
}

interface RecordRef {
  readonly seg: Segment;
  readonly id: string;
  readonly offset: number;
  readonly size: number;
  acked: boolean;
  /** Another record with the same event id (a duplicate append); acked together. */
  dup: RecordRef | undefined;
}

interface PendingAppend {
  /** Records not yet durable. */
  remaining: number;
  /** Whether the promise has settled (a `written` append settles before its records are durable). */
  settled: boolean;
  resolve(): void;
  reject(err: unknown): void;
}

interface WriteRequest {
  readonly ids: readonly string[];
  readonly encoded: Buffer[];
  readonly bytes: number;
  resolve(): void;
  reject(err: unknown): void;
}

interface QueuedRecord {
  readonly id: string;
  readonly bytes: Buffer;
  readonly owner: PendingAppend;
  /** Set when the record was written at append time: the segment and offset it went to. */
  readonly seg: Segment | undefined;
  readonly offset: number;
}

const SEGMENT_NAME = /^(\d{20})\.(seg|ack)$/;
const EVENT_ID = /^evt_[0-9a-hjkmnp-tv-z]{26}$/;
/** Offsets per ack record, so an ack record stays far below the record size cap. */
const ACK_OFFSETS_PER_RECORD = 4096;

const segmentName = (seq: number, ext: 'seg' | 'ack'): string => `${String(seq).padStart(20, '0')}.${ext}`;

const isList = (input: AuditEvent | readonly AuditEvent[]): input is readonly AuditEvent[] => Array.isArray(input);

const decodeEventId = (payload: Buffer): string | undefined => {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    const id = typeof value === 'object' && value !== null ? (value as { id?: unknown }).id : undefined;
    return typeof id === 'string' && EVENT_ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
};

const decodeAckOffsets = (payload: Buffer): number[] | undefined => {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    return Array.isArray(value) && value.every((v) => Number.isSafeInteger(v) && (v as number) >= 0)
      ? (value as number[])
      : undefined;
  } catch {
    return undefined;
  }
};

const noop = (): void => undefined;

const positive = (name: string, value: number): number => {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`AuditSpool option ${name} must be a non-negative number.`);
  return value;
};

/**
 * A durable, bounded, on-disk queue of audit events between the protocol
 * handlers and the shipper. See README.md beside this file for the on-disk
 * format and the guarantees.
 *
 * - `append` resolves only once its events are written and fdatasync'd; appends
 *   arriving together share one write and one fsync (group commit).
 * - Unacknowledged data is bounded: past the bound `append` rejects with
 *   `AUDIT_SPOOL_FULL` at once; after a disk error it rejects with
 *   `AUDIT_UNAVAILABLE` (both HTTP 503 / SQLSTATE 58000) for `retryAfterMs`.
 * - `ack` takes event ids in any order; a segment file goes once every event in
 *   it is acknowledged, and ack progress is kept in a file beside it.
 * - Opening a directory recovers every durable unacknowledged event, truncating
 *   a torn tail and skipping damaged records; it never throws for bad data.
 */
export class AuditSpool implements AuditSpoolReader {
  private readonly dir: string;
  private readonly capacityBytes: number;
  private readonly headroomBytes: number;
  private readonly segmentBytes: number;
  private readonly maxRecordBytes: number;
  private readonly windowMs: number;
  private readonly maxGroupEvents: number;
  private readonly retryAfterMs: number;
  private readonly durability: AuditSpoolDurability;
  private readonly fs: SpoolFs;
  private readonly timers: AuditTimers;
  private readonly logger: Logger;

  private segments: Segment[] = [];
  private index = new Map<string, RecordRef>();
  private active: Segment | undefined;
  private nextSeq = 1;
  private isRecovered = false;
  private recovering: Promise<void> | undefined;

  private queue: QueuedRecord[] = [];
  private queuedBytes = 0;
  private inflightBytes = 0;
  private inflightEvents = 0;
  private pendingBytes = 0;
  private pendingEvents = 0;
  private commitTimer: unknown;
  private writer: Promise<void> | undefined;
  /** The writer is writing, opening or sealing a segment: nothing may be written at append time. */
  private writing = false;
  /** Records accepted and not written yet (queued or in the writer's hands). */
  private unwritten = 0;
  /** `written` durability: appends of this tick, written together in a microtask. */
  private toWrite: WriteRequest[] = [];
  private writeScheduled = false;
  /** `settle` calls in progress: they want everything committed now, window or not. */
  private settling = 0;
  private lostEvents = 0;
  private maintenance: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<() => void>();

  private failedAt: number | undefined;
  private isFull = false;
  private closing: Promise<void> | undefined;
  private fsyncs = 0;
  private refusals = 0;
  private droppedRecords = 0;

  private constructor(options: AuditSpoolOptions) {
    if (typeof options.dir !== 'string' || options.dir === '') throw new TypeError('AuditSpool needs a directory.');
    const d = AUDIT_SPOOL_DEFAULTS;
    this.dir = options.dir;
    this.capacityBytes = positive('capacityBytes', options.capacityBytes ?? d.capacityBytes);
    this.headroomBytes = Math.min(this.capacityBytes, positive('admissionHeadroomBytes', options.admissionHeadroomBytes ?? d.admissionHeadroomBytes));
    this.segmentBytes = Math.max(1, positive('segmentBytes', options.segmentBytes ?? d.segmentBytes));
    this.maxRecordBytes = Math.max(1, positive('maxRecordBytes', options.maxRecordBytes ?? d.maxRecordBytes));
    this.windowMs = positive('groupCommitWindowMs', options.groupCommitWindowMs ?? d.groupCommitWindowMs);
    this.maxGroupEvents = Math.max(1, positive('groupCommitMaxEvents', options.groupCommitMaxEvents ?? d.groupCommitMaxEvents));
    this.retryAfterMs = positive('retryAfterMs', options.retryAfterMs ?? d.retryAfterMs);
    if (options.durability !== undefined && options.durability !== 'durable' && options.durability !== 'written') {
      throw new RangeError('AuditSpool option durability must be durable or written.');
    }
    this.durability = options.durability ?? 'durable';
    this.fs = options.fs ?? nodeSpoolFs;
    this.timers = options.timers ?? systemTimers;
    this.logger = (options.logger ?? createNullLogger()).child({ component: 'audit-spool' });
  }

  /**
   * Opens (creating if needed) the spool in `options.dir` and recovers what is
   * there. Does not throw when the directory is unusable: the spool then starts
   * refusing (`canAccept()` false, appends rejected with AUDIT_UNAVAILABLE), logs
   * why, and tries again after `retryAfterMs`.
   */
  static async open(options: AuditSpoolOptions): Promise<AuditSpool> {
    const spool = new AuditSpool(options);
    try {
      await spool.ensureRecovered();
    } catch (err) {
      spool.markFailed(err, 'Audit spool could not be opened; refusing audited work.');
    }
    return spool;
  }

  /**
   * Whether a new statement or request may be admitted now: the spool is open,
   * writable, and has `admissionHeadroomBytes` free. Handlers check it before
   * running anything they would have to audit.
   */
  canAccept(): boolean {
    return this.admission() === 'ok';
  }

  /**
   * Why new work would be refused now: `full` (AUDIT_SPOOL_FULL: less than
   * `admissionHeadroomBytes`, or nothing, free), `unavailable` (AUDIT_UNAVAILABLE: closed, or
   * refusing after a disk error), or `ok`.
   */
  admission(): AuditAdmission {
    if (this.closing !== undefined || this.isFailing()) return 'unavailable';
    const free = this.capacityBytes - this.usedBytes();
    return free > 0 && free >= this.headroomBytes ? 'ok' : 'full';
  }

  /**
   * Appends events (in call order) and resolves once they are durable. Rejects
   * at once with AUDIT_SPOOL_FULL when they would pass the capacity, with
   * AUDIT_UNAVAILABLE while the spool is closed or refusing after a disk error
   * (or when this group's write fails), and with VALIDATION_FAILED for an event
   * that does not match the schema or exceeds `maxRecordBytes`.
   */
  append(input: AuditEvent | readonly AuditEvent[]): Promise<void> {
    const events = isList(input) ? input : [input];
    if (events.length === 0) return Promise.resolve();
    if (this.closing !== undefined || this.isFailing()) return this.refuseUnavailable(events.length);
    const ids: string[] = [];
    const encoded: Buffer[] = [];
    let bytes = 0;
    for (const event of events) {
      const problem = auditEventProblem(event);
      if (problem !== undefined) {
        const result = auditEventSchema.safeParse(event);
        const details = result.success ? [{ path: '', message: problem }] : zodProblems(result.error);
        return Promise.reject(new AppError('VALIDATION_FAILED', { message: 'The audit event is not valid.', details }));
      }
      // Id first, as every record is written: a reader checks a record's id without parsing it.
      const { id, ...rest } = event;
      const payload = Buffer.from(JSON.stringify({ id, ...rest }), 'utf8');
      if (payload.length > this.maxRecordBytes) return Promise.reject(this.tooLarge());
      const record = encodeRecord(payload);
      ids.push(event.id);
      encoded.push(record);
      bytes += record.length;
    }
    return this.accept(ids, encoded, bytes);
  }

  /**
   * Appends one event already serialised by its producer (the recorder's
   * per-session encoder, which checked its fields): `json` must be the
   * JSON text of a valid {@link AuditEvent} whose id is `id`. Resolves and
   * rejects as {@link append}. The hot path: no parse, no second copy.
   */
  appendJson(id: string, json: string): Promise<void> {
    if (this.closing !== undefined || this.isFailing()) return this.refuseUnavailable(1);
    const n = Buffer.byteLength(json, 'utf8');
    if (n > this.maxRecordBytes) return Promise.reject(this.tooLarge());
    const record = encodeJsonRecord(json, n);
    return this.accept([id], [record], record.length);
  }

  private refuseUnavailable(events: number): Promise<never> {
    this.refusals += events;
    return Promise.reject(new AppError('AUDIT_UNAVAILABLE'));
  }

  private tooLarge(): AppError {
    return new AppError('VALIDATION_FAILED', {
      message: 'The audit event is too large.',
      details: [{ path: 'details', message: `The serialised event exceeds ${this.maxRecordBytes} bytes.` }],
    });
  }

  /** Takes encoded records (capacity permitting) into the write path of the configured durability. */
  private accept(ids: readonly string[], encoded: Buffer[], bytes: number): Promise<void> {
    if (this.usedBytes() + bytes > this.capacityBytes) {
      this.refusals += ids.length;
      if (!this.isFull) {
        this.isFull = true;
        this.logger.warn('Audit spool is full; refusing new events.', {
          capacityBytes: this.capacityBytes,
          pendingBytes: this.pendingBytes,
          pendingEvents: this.pendingEvents,
        });
      }
      return Promise.reject(new AppError('AUDIT_SPOOL_FULL'));
    }
    if (this.isFull) {
      this.isFull = false;
      this.logger.info('Audit spool accepts events again.', { pendingBytes: this.pendingBytes });
    }
    if (this.durability === 'written') {
      // The appends of one turn of the event loop share one write(2), made in
      // its check phase (setImmediate): every session's decisions and outcomes
      // from the socket reads of that turn. A write costs 20-40 µs of system
      // time on these machines, far more than the encoding of an event.
      this.queuedBytes += bytes;
      return new Promise<void>((resolve, reject) => {
        this.toWrite.push({ ids, encoded, bytes, resolve, reject });
        if (!this.writeScheduled) {
          this.writeScheduled = true;
          setImmediate(this.writeNow);
        }
      });
    }
    return new Promise<void>((resolve, reject) => {
      const owner: PendingAppend = { remaining: ids.length, settled: false, resolve, reject };
      this.enqueue(ids, encoded, bytes, owner);
    });
  }

  private enqueue(ids: readonly string[], encoded: Buffer[], bytes: number, owner: PendingAppend): void {
    ids.forEach((id, i) => this.queue.push({ id, bytes: encoded[i] as Buffer, owner, seg: undefined, offset: 0 }));
    this.queuedBytes += bytes;
    this.unwritten += ids.length;
    this.scheduleCommit();
  }

  /**
   * `written` durability: writes the appends of the tick to the active
   * segment with one write when nothing is ahead of them and they fit, and
   * resolves them; the writer fdatasyncs them later with the rest of their
   * group. Otherwise (no active segment yet, segment full, the writer busy
   * writing) they take the writer's queue and resolve once durable.
   */
  private readonly writeNow = (): void => {
    this.writeScheduled = false;
    const batch = this.toWrite;
    this.toWrite = [];
    let bytes = 0;
    for (const a of batch) bytes += a.bytes;
    this.queuedBytes -= bytes;
    const seg = this.active;
    const canWrite =
      seg !== undefined && !seg.broken && seg.fh?.writeSync !== undefined && !this.writing && this.unwritten === 0 &&
      this.isRecovered && this.closing === undefined && seg.written + bytes <= this.segmentBytes;
    if (!canWrite) {
      for (const a of batch) this.enqueue(a.ids, a.encoded, a.bytes, { remaining: a.ids.length, settled: false, resolve: a.resolve, reject: a.reject });
      return;
    }
    const parts: Buffer[] = [];
    for (const a of batch) for (const b of a.encoded) parts.push(b);
    const buf = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, bytes);
    const at = seg.written;
    try {
      const writeSync = seg.fh?.writeSync as NonNullable<SpoolFileHandle['writeSync']>;
      let done = 0;
      while (done < buf.length) {
        const n = writeSync(buf, done, buf.length - done, at + done);
        if (n <= 0) throw new Error('The audit segment write made no progress.');
        done += n;
      }
    } catch (err) {
      for (const a of batch) this.refusals += a.ids.length;
      seg.broken = true;
      this.markFailed(err, 'Audit spool write failed; refusing new events.');
      // The writer cuts the segment back to what is durable and seals it.
      this.scheduleCommit();
      const refusal = new AppError('AUDIT_UNAVAILABLE', { cause: err });
      for (const a of batch) a.reject(refusal);
      return;
    }
    seg.written = at + bytes;
    const owner: PendingAppend = { remaining: 0, settled: true, resolve: noop, reject: noop };
    let offset = at;
    for (const a of batch) {
      for (let i = 0; i < a.ids.length; i += 1) {
        const record = a.encoded[i] as Buffer;
        this.queue.push({ id: a.ids[i] as string, bytes: record, owner, seg, offset });
        offset += record.length;
      }
    }
    this.queuedBytes += bytes;
    this.scheduleCommit();
    for (const a of batch) a.resolve();
  };

  /**
   * The oldest unacknowledged durable events, at most `maxEvents`, in append
   * order. Calling it again before acking returns the same events (the shipper
   * has one batch in flight at a time). A record that no longer reads back
   * correctly is logged, dropped and skipped; never shipped.
   */
  async readUnacked(maxEvents: number): Promise<AuditEvent[]> {
    return this.readPicked(maxEvents, (buf, at, ref) => this.decodeAt(buf, at, ref));
  }

  /**
   * As {@link readUnacked}, but each event as stored — the JSON payload of its
   * record, CRC-checked, with its id checked against the index — without
   * decoding it: what the shipper sends (IngestAuditRequest.spooled_events),
   * so shipping costs neither a parse nor a re-encoding per event.
   */
  async readUnackedSpooled(maxEvents: number): Promise<SpooledEvent[]> {
    return this.readPicked(maxEvents, (buf, at, ref) => this.spooledAt(buf, at, ref));
  }

  /** The oldest unacknowledged records, at most `maxEvents`, each read back by `decode`. */
  private async readPicked<T>(maxEvents: number, decode: (buf: Buffer, at: number, ref: RecordRef) => T | undefined): Promise<T[]> {
    const picked: RecordRef[] = [];
    for (const seg of this.segments) {
      if (picked.length >= maxEvents) break;
      if (seg.unacked === 0) continue;
      while (seg.scanFrom < seg.records.length && seg.records[seg.scanFrom]?.acked === true) seg.scanFrom += 1;
      for (let k = seg.scanFrom; k < seg.records.length && picked.length < maxEvents; k += 1) {
        const ref = seg.records[k] as RecordRef;
        if (!ref.acked) picked.push(ref);
      }
    }
    const out: T[] = [];
    let start = 0;
    while (start < picked.length) {
      const seg = (picked[start] as RecordRef).seg;
      let end = start;
      while (end < picked.length && (picked[end] as RecordRef).seg === seg) end += 1;
      out.push(...(await this.readRecords(seg, picked.slice(start, end), decode)));
      start = end;
    }
    return out;
  }

  /**
   * Acknowledges events by id, in any order and any grouping; unknown or
   * already acknowledged ids are ignored. Frees their capacity at once; resolves
   * when the progress is written to the ack files (not fsynced: a crash may
   * cause a few events to be shipped again, which ingestion by id absorbs) and
   * fully acknowledged sealed segments are deleted.
   */
  async ack(eventIds: Iterable<string>): Promise<void> {
    const touched = new Map<Segment, number[]>();
    for (const id of eventIds) {
      const head = this.index.get(id);
      if (head === undefined) continue;
      this.index.delete(id);
      for (let ref: RecordRef | undefined = head; ref !== undefined; ref = ref.dup) {
        if (ref.acked) continue;
        this.markAcked(ref);
        const list = touched.get(ref.seg);
        if (list === undefined) touched.set(ref.seg, [ref.offset]);
        else list.push(ref.offset);
      }
    }
    if (touched.size === 0) return;
    await this.maintain(async () => {
      for (const [seg, offsets] of touched) await this.persistAcks(seg, offsets);
    });
  }

  /** Subscribes to "new events are durable"; returns the unsubscribe function. */
  onDurable(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Commits whatever is queued now (without waiting for the group window) and resolves when nothing is queued or being written. */
  async settle(): Promise<void> {
    if (this.writeScheduled) this.writeNow();
    this.settling += 1;
    try {
      while (this.writer !== undefined || this.queue.length > 0) {
        if (this.writer === undefined) this.startWriter();
        await this.writer;
      }
    } finally {
      this.settling -= 1;
    }
  }

  /** Current counters and levels. */
  stats(): AuditSpoolStats {
    let diskBytes = 0;
    for (const seg of this.segments) diskBytes += seg.size;
    return {
      pendingEvents: this.pendingEvents,
      pendingBytes: this.pendingBytes,
      queuedEvents: this.queue.length + this.inflightEvents,
      queuedBytes: this.queuedBytes + this.inflightBytes,
      capacityBytes: this.capacityBytes,
      segments: this.segments.length,
      diskBytes,
      fsyncs: this.fsyncs,
      refusals: this.refusals,
      droppedRecords: this.droppedRecords,
      lostEvents: this.lostEvents,
      isWritable: !this.isFailing(),
    };
  }

  /**
   * Stops accepting appends, commits those already accepted, writes pending ack
   * progress and closes the active segment. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.settle();
      await this.maintenance;
      if (this.active !== undefined) await this.seal(this.active);
      this.listeners.clear();
    })();
    return this.closing;
  }

  // ---- group commit --------------------------------------------------------

  private usedBytes(): number {
    return this.pendingBytes + this.queuedBytes + this.inflightBytes;
  }

  private isFailing(): boolean {
    return this.failedAt !== undefined && this.timers.now() - this.failedAt < this.retryAfterMs;
  }

  private markFailed(err: unknown, message: string): void {
    this.failedAt = this.timers.now();
    this.logger.error(message, { dir: this.dir, code: errorCode(err), error: err, retryAfterMs: this.retryAfterMs });
  }

  private scheduleCommit(): void {
    if (this.writer !== undefined) return; // the running writer takes the queue when its group is done
    if (this.queue.length >= this.maxGroupEvents) {
      this.startWriter();
    } else if (this.commitTimer === undefined) {
      this.commitTimer = this.timers.setTimeout(() => {
        this.commitTimer = undefined;
        if (this.writer === undefined) this.startWriter();
      }, this.windowMs);
    }
  }

  private startWriter(): void {
    if (this.commitTimer !== undefined) {
      this.timers.clearTimeout(this.commitTimer);
      this.commitTimer = undefined;
    }
    this.writer = this.runWriter().finally(() => {
      this.writer = undefined;
      // Appends made between the writer's last look at the queue and now saw a
      // running writer and scheduled nothing: they have waited long enough —
      // unless nothing waits for them (`written` records only): those keep the
      // window, so fsyncs stay at most one per window under steady load.
      if (this.queue.length === 0) return;
      if (this.durability === 'written' && this.unwritten === 0 && this.settling === 0) this.scheduleCommit();
      else this.startWriter();
    });
  }

  private async runWriter(): Promise<void> {
    // Appends that arrive while a group is being written wait for it and then
    // form the next group together: the classic group commit. Records written
    // at append time that nobody waits for keep the window instead.
    for (let first = true; this.queue.length > 0; first = false) {
      if (!first && this.durability === 'written' && this.unwritten === 0 && !this.settling) break;
      const group = this.queue;
      this.queue = [];
      const bytes = group.reduce((n, r) => n + r.bytes.length, 0);
      this.queuedBytes -= bytes;
      this.inflightBytes += bytes;
      this.inflightEvents += group.length;
      await this.commit(group);
    }
  }

  /** Writes and fsyncs one group, split at segment boundaries; settles every append in it. */
  private async commit(group: QueuedRecord[]): Promise<void> {
    let done = 0;
    /** Records before this index are written (at append time or below). */
    let writtenTo = 0;
    let committedAny = false;
    try {
      // Records written at append time come first in a group, all in one segment: only their fsync is left.
      let pre = 0;
      while (pre < group.length && (group[pre] as QueuedRecord).seg !== undefined) pre += 1;
      if (pre > 0) {
        const seg = (group[0] as QueuedRecord).seg as Segment;
        const chunk = group.slice(0, pre);
        const last = chunk[pre - 1] as QueuedRecord;
        writtenTo = pre;
        if (seg.fh === undefined || seg.removed) {
          // Their segment was cut back after an earlier failure: they are gone.
          this.loseWritten(chunk);
        } else {
          await seg.fh.datasync();
          this.fsyncs += 1;
          this.settleDurable(seg, chunk);
          seg.size = Math.max(seg.size, last.offset + last.bytes.length);
          committedAny = true;
          if (seg.broken) await this.whileWriting(() => this.abandon(seg));
          else if (seg.size === seg.written && seg.size >= this.segmentBytes) await this.whileWriting(() => this.seal(seg));
        }
        done = pre;
      }
      if (done < group.length) await this.whileWriting(() => this.ensureRecovered());
      while (done < group.length) {
        const seg = await this.whileWriting(() => this.activeSegment());
        if (seg.broken) {
          await this.whileWriting(() => this.abandon(seg));
          continue;
        }
        let end = done;
        let length = 0;
        while (end < group.length) {
          const size = (group[end] as QueuedRecord).bytes.length;
          if (seg.written + length > 0 && seg.written + length + size > this.segmentBytes) break;
          length += size;
          end += 1;
        }
        if (end === done) {
          await this.whileWriting(() => this.seal(seg));
          continue;
        }
        const chunk = group.slice(done, end);
        const buf = Buffer.concat(
          chunk.map((r) => r.bytes),
          length,
        );
        const at = seg.written;
        this.writing = true;
        try {
          await this.writeFully(seg, buf, at);
        } catch (err) {
          seg.broken = true;
          throw err;
        } finally {
          this.writing = false;
        }
        seg.written = at + length;
        this.unwritten -= chunk.length;
        writtenTo = end;
        await (seg.fh as SpoolFileHandle).datasync();
        this.fsyncs += 1;

        let offset = at;
        const placed: QueuedRecord[] = [];
        for (const r of chunk) {
          placed.push({ ...r, seg, offset });
          offset += r.bytes.length;
        }
        this.settleDurable(seg, placed);
        seg.size = Math.max(seg.size, at + length);
        done = end;
        committedAny = true;
        if (seg.size === seg.written && seg.size >= this.segmentBytes) await this.whileWriting(() => this.seal(seg));
      }
      if (this.failedAt !== undefined && !this.isFailing()) {
        this.failedAt = undefined;
        this.logger.info('Audit spool is writable again.', { dir: this.dir });
      }
    } catch (err) {
      const rest = group.slice(done);
      this.inflightBytes -= rest.reduce((n, r) => n + r.bytes.length, 0);
      this.inflightEvents -= rest.length;
      this.unwritten -= group.length - Math.max(writtenTo, done);
      let lost = 0;
      for (const r of rest) if (r.owner.settled) lost += 1;
      this.refusals += rest.length - lost;
      this.lostEvents += lost;
      this.markFailed(err, 'Audit spool write failed; refusing new events.');
      if (lost > 0) {
        this.logger.error('Audit events already written could not be made durable and are lost.', { events: lost, ids: rest.filter((r) => r.owner.settled).slice(0, 20).map((r) => r.id) });
      }
      await this.whileWriting(() => this.abandonActive());
      const refusal = new AppError('AUDIT_UNAVAILABLE', { cause: err });
      for (const r of rest) {
        if (r.owner.remaining > 0) {
          r.owner.remaining = 0;
          if (!r.owner.settled) {
            r.owner.settled = true;
            r.owner.reject(refusal);
          }
        }
      }
    }
    if (committedAny) {
      for (const listener of [...this.listeners]) {
        try {
          listener();
        } catch (err) {
          this.logger.error('Audit spool listener failed.', { error: err });
        }
      }
    }
  }

  /** Records written at append time whose segment was cut back before their fsync: counted and logged as lost. */
  private loseWritten(records: readonly QueuedRecord[]): void {
    this.inflightBytes -= records.reduce((n, r) => n + r.bytes.length, 0);
    this.inflightEvents -= records.length;
    this.lostEvents += records.length;
    for (const r of records) r.owner.remaining -= 1;
    this.logger.error('Audit events already written could not be made durable and are lost.', { events: records.length, ids: records.slice(0, 20).map((r) => r.id) });
  }

  /** Indexes records now durable in `seg` and resolves the appends they complete. */
  private settleDurable(seg: Segment, records: readonly QueuedRecord[]): void {
    let bytes = 0;
    for (const r of records) {
      this.indexRecord({ seg, id: r.id, offset: r.offset, size: r.bytes.length, acked: false, dup: undefined });
      bytes += r.bytes.length;
    }
    this.inflightBytes -= bytes;
    this.inflightEvents -= records.length;
    for (const r of records) {
      r.owner.remaining -= 1;
      if (r.owner.remaining === 0 && !r.owner.settled) {
        r.owner.settled = true;
        r.owner.resolve();
      }
    }
  }

  /** Runs a step that writes, opens or seals a segment: nothing is written at append time meanwhile. */
  private async whileWriting<T>(step: () => Promise<T>): Promise<T> {
    this.writing = true;
    try {
      return await step();
    } finally {
      this.writing = false;
    }
  }

  private async writeFully(seg: Segment, buf: Buffer, at: number): Promise<void> {
    const fh = seg.fh as SpoolFileHandle;
    let written = 0;
    while (written < buf.length) {
      const { bytesWritten } = await fh.write(buf, written, buf.length - written, at + written);
      if (bytesWritten <= 0) throw new Error('The audit segment write made no progress.');
      written += bytesWritten;
    }
  }

  private async activeSegment(): Promise<Segment> {
    if (this.active !== undefined) return this.active;
    await this.fs.mkdir(this.dir);
    const seq = this.nextSeq;
    this.nextSeq += 1;
    const path = join(this.dir, segmentName(seq, 'seg'));
    const fh = await this.fs.open(path, 'wx');
    try {
      // The new name must survive a crash along with the data later fsynced into it.
      await this.fs.syncDir(this.dir);
    } catch (err) {
      await fh.close().catch(() => undefined);
      await this.fs.unlink(path).catch(() => undefined);
      throw err;
    }
    const seg: Segment = {
      seq,
      path,
      ackPath: join(this.dir, segmentName(seq, 'ack')),
      records: [],
      unacked: 0,
      scanFrom: 0,
      size: 0,
      written: 0,
      broken: false,
      fh,
      sealed: false,
      removed: false,
    };
    this.segments.push(seg);
    this.active = seg;
    return seg;
  }

  /** Closes a segment for writing; deletes it if everything in it is already acknowledged. */
  private async seal(seg: Segment): Promise<void> {
    if (this.active === seg) this.active = undefined;
    seg.sealed = true;
    const fh = seg.fh;
    seg.fh = undefined;
    if (fh !== undefined) {
      await fh.close().catch((err: unknown) => {
        this.logger.warn('Audit segment could not be closed.', { segment: seg.path, code: errorCode(err), error: err });
      });
    }
    if (seg.unacked === 0) await this.maintain(() => this.removeSegment(seg));
  }

  /**
   * After a failed write or fsync the page cache can no longer be trusted for
   * this file, so it is never written again: cut it back to its last durable
   * size (so a restart does not find records whose appends were refused) and seal it.
   */
  private async abandonActive(): Promise<void> {
    if (this.active !== undefined) await this.abandon(this.active);
  }

  private async abandon(seg: Segment): Promise<void> {
    if (seg.sealed) return;
    seg.broken = true;
    seg.written = seg.size;
    const fh = seg.fh;
    if (fh !== undefined) {
      await fh.truncate(seg.size).catch((err: unknown) => {
        this.logger.warn('Audit segment could not be cut back after a failed write.', {
          segment: seg.path,
          code: errorCode(err),
        });
      });
    }
    await this.seal(seg);
  }

  private indexRecord(ref: RecordRef): void {
    ref.seg.records.push(ref);
    ref.seg.unacked += 1;
    this.pendingBytes += ref.size;
    this.pendingEvents += 1;
    const prior = this.index.get(ref.id);
    if (prior !== undefined) ref.dup = prior;
    this.index.set(ref.id, ref);
  }

  private markAcked(ref: RecordRef): void {
    ref.acked = true;
    ref.seg.unacked -= 1;
    this.pendingBytes -= ref.size;
    this.pendingEvents -= 1;
  }

  // ---- acks and segment removal -------------------------------------------

  /** Runs `op` after every earlier maintenance step (ack writes, removals), so they never interleave. */
  private maintain(op: () => Promise<void>): Promise<void> {
    const run = this.maintenance.then(op);
    this.maintenance = run.catch((err: unknown) => {
      this.logger.error('Audit spool maintenance failed.', { error: err });
    });
    return this.maintenance;
  }

  private async persistAcks(seg: Segment, offsets: number[]): Promise<void> {
    if (seg.removed) return;
    if (seg.sealed && seg.unacked === 0) {
      await this.removeSegment(seg);
      return;
    }
    const records: Buffer[] = [];
    for (let i = 0; i < offsets.length; i += ACK_OFFSETS_PER_RECORD) {
      records.push(encodeRecord(Buffer.from(JSON.stringify(offsets.slice(i, i + ACK_OFFSETS_PER_RECORD)), 'utf8')));
    }
    try {
      await this.fs.appendFile(seg.ackPath, Buffer.concat(records));
    } catch (err) {
      this.logger.warn('Audit ack progress could not be saved; those events may be shipped again after a restart.', {
        segment: seg.path,
        code: errorCode(err),
      });
    }
  }

  private async removeSegment(seg: Segment): Promise<void> {
    if (seg.removed) return;
    seg.removed = true;
    this.segments = this.segments.filter((s) => s !== seg);
    // Segment first: a leftover ack file without its segment is an orphan, removed at start-up.
    for (const path of [seg.path, seg.ackPath]) {
      try {
        await this.fs.unlink(path);
      } catch (err) {
        if (!hasCode(err, 'ENOENT')) {
          this.logger.warn('Audit spool file could not be removed.', { file: path, code: errorCode(err) });
        }
      }
    }
  }

  // ---- reading back ---------------------------------------------------------

  private async readRecords<T>(seg: Segment, refs: RecordRef[], decode: (buf: Buffer, at: number, ref: RecordRef) => T | undefined): Promise<T[]> {
    const first = refs[0] as RecordRef;
    const last = refs[refs.length - 1] as RecordRef;
    const start = first.offset;
    const buf = Buffer.alloc(last.offset + last.size - start);
    let got = 0;
    try {
      const fh = await this.fs.open(seg.path, 'r');
      try {
        while (got < buf.length) {
          const { bytesRead } = await fh.read(buf, got, buf.length - got, start + got);
          if (bytesRead <= 0) break;
          got += bytesRead;
        }
      } finally {
        await fh.close();
      }
    } catch (err) {
      if (seg.removed) return [];
      if (!hasCode(err, 'ENOENT')) throw err;
      // The file was removed behind our back: what was in it is gone.
      this.logger.error('Audit segment disappeared; its unshipped events are lost.', { segment: seg.path });
      for (const ref of refs) this.dropRecord(ref);
      return [];
    }
    const out: T[] = [];
    for (const ref of refs) {
      if (ref.acked) continue;
      const event = decode(buf.subarray(0, got), ref.offset - start, ref);
      if (event === undefined) {
        this.logger.error('Audit record is unreadable; dropped.', { segment: seg.path, offset: ref.offset, eventId: ref.id });
        this.dropRecord(ref);
      } else {
        out.push(event);
      }
    }
    return out;
  }

  /** The record at `at` as spooled, when it is whole and holds event `ref.id`. */
  private spooledAt(buf: Buffer, at: number, ref: RecordRef): SpooledEvent | undefined {
    const probe = probeRecord(buf, at, this.maxRecordBytes);
    if (probe.kind !== 'record' || probe.size !== ref.size) return undefined;
    // Events are serialised id first; anything else (records of an older writer) is decoded to check it.
    const head = `{"id":"${ref.id}"`;
    if (probe.payload.length > head.length && probe.payload.toString('latin1', 0, head.length) === head) return { id: ref.id, json: probe.payload };
    return this.decodeAt(buf, at, ref) === undefined ? undefined : { id: ref.id, json: probe.payload };
  }

  private decodeAt(buf: Buffer, at: number, ref: RecordRef): AuditEvent | undefined {
    const probe = probeRecord(buf, at, this.maxRecordBytes);
    if (probe.kind !== 'record' || probe.size !== ref.size) return undefined;
    try {
      // The CRC vouches for the bytes; the (cheap) event check for their meaning.
      const value: unknown = JSON.parse(probe.payload.toString('utf8'));
      return auditEventProblem(value) === undefined && (value as AuditEvent).id === ref.id ? (value as AuditEvent) : undefined;
    } catch {
      return undefined;
    }
  }

  private dropRecord(ref: RecordRef): void {
    if (ref.acked) return;
    this.droppedRecords += 1;
    // Acknowledge it locally, with any duplicates, so the shipper does not stall on it.
    void this.ack([ref.id]);
  }

  // ---- recovery -------------------------------------------------------------

  private async ensureRecovered(): Promise<void> {
    if (this.isRecovered) return;
    this.recovering ??= this.recover().finally(() => {
      this.recovering = undefined;
    });
    await this.recovering;
  }

  private async recover(): Promise<void> {
    let names: string[];
    try {
      names = await this.fs.readdir(this.dir);
    } catch (err) {
      if (!hasCode(err, 'ENOENT')) throw err;
      names = [];
    }
    const segSeqs: number[] = [];
    const ackSeqs: number[] = [];
    for (const name of names) {
      const m = SEGMENT_NAME.exec(name);
      if (m === null) continue;
      (m[2] === 'seg' ? segSeqs : ackSeqs).push(Number(m[1]));
    }
    segSeqs.sort((a, b) => a - b);
    const recovered: Segment[] = [];
    for (const seq of segSeqs) recovered.push(await this.recoverSegment(seq));

    const live = new Set(segSeqs);
    for (const seq of ackSeqs) {
      if (live.has(seq)) continue;
      await this.fs.unlink(join(this.dir, segmentName(seq, 'ack'))).catch(() => undefined);
    }
    this.nextSeq = Math.max(0, ...segSeqs, ...ackSeqs) + 1;
    this.segments = recovered;
    for (const seg of recovered) {
      const records = seg.records.splice(0);
      // Records the ack file lists stay out of the index and the counts.
      for (const ref of records) {
        if (ref.acked) seg.records.push(ref);
        else this.indexRecord(ref);
      }
    }
    this.isRecovered = true;
    for (const seg of recovered) if (seg.unacked === 0) await this.maintain(() => this.removeSegment(seg));
    this.logger.info('Audit spool opened.', {
      dir: this.dir,
      segments: this.segments.length,
      pendingEvents: this.pendingEvents,
      pendingBytes: this.pendingBytes,
    });
  }

  private async recoverSegment(seq: number): Promise<Segment> {
    const path = join(this.dir, segmentName(seq, 'seg'));
    const ackPath = join(this.dir, segmentName(seq, 'ack'));
    const buf = await this.fs.readFile(path);
    const scan = scanRecords(buf, this.maxRecordBytes, decodeEventId);
    const inner = scan.damaged.filter((d) => d.offset < scan.validEnd);
    if (inner.length > 0) {
      this.logger.error('Audit segment has damaged records; they were skipped.', {
        segment: path,
        ranges: inner.slice(0, 10),
        bytes: inner.reduce((n, d) => n + d.length, 0),
      });
    }
    let size = buf.length;
    if (scan.validEnd < buf.length) {
      // A torn tail: the last group's write did not finish before a crash, so its
      // appends never resolved. Cut it off so the file ends at a record boundary.
      this.logger.warn('Audit segment had a torn tail; truncated.', {
        segment: path,
        offset: scan.validEnd,
        bytes: buf.length - scan.validEnd,
      });
      size = scan.validEnd;
      try {
        const fh = await this.fs.open(path, 'r+');
        try {
          await fh.truncate(scan.validEnd);
          await fh.datasync();
        } finally {
          await fh.close();
        }
      } catch (err) {
        this.logger.warn('Audit segment tail could not be truncated; it stays skipped.', { segment: path, code: errorCode(err) });
      }
    }

    const seg: Segment = { seq, path, ackPath, records: [], unacked: 0, scanFrom: 0, size, written: size, broken: false, fh: undefined, sealed: true, removed: false };
    const byOffset = new Map<number, RecordRef>();
    for (const r of scan.records) {
      const ref: RecordRef = { seg, id: r.value, offset: r.offset, size: r.size, acked: false, dup: undefined };
      seg.records.push(ref);
      byOffset.set(r.offset, ref);
    }

    let ackBuf: Buffer | undefined;
    try {
      ackBuf = await this.fs.readFile(ackPath);
    } catch (err) {
      if (!hasCode(err, 'ENOENT')) {
        this.logger.warn('Audit ack file is unreadable; its events will be shipped again.', { file: ackPath, code: errorCode(err) });
      }
    }
    if (ackBuf !== undefined) {
      // Only an offset that starts a valid record counts; anything else in a damaged ack file is ignored.
      for (const rec of scanRecords(ackBuf, this.maxRecordBytes, decodeAckOffsets).records) {
        for (const offset of rec.value) {
          const ref = byOffset.get(offset);
          if (ref !== undefined) ref.acked = true;
        }
      }
    }
    return seg;
  }
}
