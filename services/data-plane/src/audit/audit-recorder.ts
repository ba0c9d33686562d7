import { AppError, createNullLogger, isAppError, newId, type Logger } from '@pa/kit';
import {
  auditEventProblem,
  isAuditAction,
  isAuditDetails,
  isAuditOutcome,
  isDecisionOutcome,
  type AuditDecisionOutcome,
  type AuditEvent,
  type AuditResultOutcome,
} from './audit-event';
import type { AuditAdmission } from './audit-spool';
import { systemTimers, type AuditTimers } from './timers';

/** An event as a handler hands it over: the recorder fills `id`, `time` and `nodeId` unless given. */
export type AuditEventDraft = Omit<AuditEvent, 'id' | 'time' | 'nodeId' | 'outcome'> & {
  readonly id?: string;
  readonly time?: string;
};

/** A decision: written before the action it allows (or instead of it, when denied). */
export type AuditDecisionDraft = AuditEventDraft & { readonly outcome: AuditDecisionOutcome };

/** An outcome: written after the action. */
export type AuditOutcomeDraft = AuditEventDraft & { readonly outcome: AuditResultOutcome };

/** The fields every event of one session shares (see {@link AuditSink.session}). */
export type AuditSessionFields = Pick<AuditEvent, 'actor' | 'connectionId' | 'connectionName' | 'grantId' | 'sessionId' | 'protocol'>;

/**
 * Audit hooks bound to one session: what a protocol handler calls per
 * statement or request. Same contract as {@link AuditSink.decision} and
 * {@link AuditSink.outcome}, with the session's fields filled in.
 */
export interface SessionAuditHooks {
  canAccept(): boolean;
  /** Resolves once the decision is recorded; rejects with AUDIT_SPOOL_FULL / AUDIT_UNAVAILABLE / VALIDATION_FAILED. */
  decision(action: string, outcome: AuditDecisionOutcome, details: Record<string, unknown>): Promise<void>;
  /** Resolves true once recorded, false when it could not be (logged, counted); never rejects. */
  outcome(action: string, outcome: AuditResultOutcome, details: Record<string, unknown>): Promise<boolean>;
}

/** The spool operations the recorder needs. */
export interface AuditAppender {
  /** `ok`, or why new work would be refused (see AuditSpool.admission). */
  admission(): AuditAdmission;
  append(events: AuditEvent | readonly AuditEvent[]): Promise<void>;
  /** Appends one event already serialised as JSON (see AuditSpool.appendJson). */
  appendJson(id: string, json: string): Promise<void>;
}

/**
 * The audit hooks protocol handlers call (STYLE.md §6 `AuditSink`). Handlers
 * depend on this interface, so tests can pass a fake.
 */
export interface AuditSink {
  /** Whether a new statement/request can be admitted; false → refuse it (HTTP 503 / SQLSTATE 58000). */
  canAccept(): boolean;
  /** Records a decision durably; resolves with the stored event; rejects with AUDIT_SPOOL_FULL / AUDIT_UNAVAILABLE. */
  decision(draft: AuditDecisionDraft): Promise<AuditEvent>;
  /** Records an outcome durably; resolves true when durable, false when it could not be recorded; never rejects. */
  outcome(draft: AuditOutcomeDraft): Promise<boolean>;
  /**
   * Hooks for one session: its fields are checked once here (VALIDATION_FAILED
   * when they would make an invalid event), and each event is then written
   * straight to JSON — the per-statement hot path. `detailsPrefix` opens every
   * event's details (e.g. the tunnel id).
   */
  session(fields: AuditSessionFields, detailsPrefix?: Readonly<Record<string, string>>): SessionAuditHooks;
}

let isoMs = Number.NaN;
let isoText = '';
/** `new Date(ms).toISOString()`, remembered for the last millisecond asked (events come in bursts). */
const isoTime = (ms: number): string => {
  if (ms !== isoMs) {
    isoText = new Date(ms).toISOString();
    isoMs = ms;
  }
  return isoText;
};

const invalidEvent = (message: string): AppError =>
  new AppError('VALIDATION_FAILED', { message: 'The audit event is not valid.', details: [{ path: '', message }] });

const returnTrue = (): boolean => true;

/** Why a new decision is refused before it touches the spool (headroom kept for outcomes), or undefined. */
const admissionError = (spool: AuditAppender): AppError | undefined => {
  const admission = spool.admission();
  if (admission === 'full') return new AppError('AUDIT_SPOOL_FULL');
  if (admission === 'unavailable') return new AppError('AUDIT_UNAVAILABLE');
  return undefined;
};

/** Dependencies of an {@link AuditRecorder}. */
export interface AuditRecorderOptions {
  spool: AuditAppender;
  /** Id of this node, stamped on every event. */
  nodeId: string;
  timers?: Pick<AuditTimers, 'now'>;
  logger?: Logger;
}

/**
 * The facade protocol handlers call.
 *
 * - `decision` must be awaited before the action it allows: it resolves only
 *   once the event is on disk (fsynced), and rejects with an AppError
 *   (AUDIT_SPOOL_FULL, AUDIT_UNAVAILABLE) when it cannot be. The handler then
 *   refuses the action in its own protocol (HTTP 503, PG ErrorResponse 58000)
 *   rather than run it unaudited. It also rejects at once, without touching the
 *   spool, when `canAccept()` is false, keeping the spool's headroom for the
 *   outcomes of actions already admitted.
 * - `outcome` is appended in call order just like a decision and is just as
 *   durable, but the action already happened and cannot be undone, so it never
 *   rejects (per STYLE.md §6, audit failures are logged, not thrown into the
 *   proxy path): it resolves `true` once durable and `false` if it could not be
 *   recorded (logged at error level, counted in `lostOutcomes`). A handler on a
 *   hot path may fire and forget it (`void sink.outcome(…)`); its place in the
 *   spool is fixed when the call is made, so a later decision can never land
 *   before it.
 */
export class AuditRecorder implements AuditSink {
  private readonly spool: AuditAppender;
  private readonly nodeId: string;
  private readonly timers: Pick<AuditTimers, 'now'>;
  private readonly logger: Logger;
  private lost = 0;

  constructor(options: AuditRecorderOptions) {
    if (options.spool === undefined) throw new TypeError('AuditRecorder needs a spool.');
    if (typeof options.nodeId !== 'string' || options.nodeId === '') throw new TypeError('AuditRecorder needs a node id.');
    this.spool = options.spool;
    this.nodeId = options.nodeId;
    this.timers = options.timers ?? systemTimers;
    this.logger = (options.logger ?? createNullLogger()).child({ component: 'audit-recorder' });
  }

  /** Outcome events that could not be recorded since start. */
  get lostOutcomes(): number {
    return this.lost;
  }

  canAccept(): boolean {
    return this.spool.admission() === 'ok';
  }

  async decision(draft: AuditDecisionDraft): Promise<AuditEvent> {
    if (!isDecisionOutcome(draft.outcome)) {
      throw new AppError('VALIDATION_FAILED', { message: 'A decision event must be allowed or denied.', details: [{ path: 'outcome', message: 'Expected allowed or denied.' }] });
    }
    const refused = admissionError(this.spool);
    if (refused !== undefined) throw refused;
    const event = this.complete(draft);
    await this.spool.append(event);
    return event;
  }

  async outcome(draft: AuditOutcomeDraft): Promise<boolean> {
    let event: AuditEvent | undefined;
    try {
      if (isDecisionOutcome(draft.outcome)) {
        throw new AppError('VALIDATION_FAILED', { message: 'An outcome event must be success, failure or error.', details: [{ path: 'outcome', message: 'Expected success, failure or error.' }] });
      }
      event = this.complete(draft);
      await this.spool.append(event);
      return true;
    } catch (err) {
      return this.lostOutcome(event?.id ?? draft.id, draft.action, draft, err);
    }
  }

  session(fields: AuditSessionFields, detailsPrefix: Readonly<Record<string, string>> = {}): SessionAuditHooks {
    const { spool, nodeId, timers } = this;
    const shared = {
      nodeId,
      actor: fields.actor,
      connectionId: fields.connectionId,
      connectionName: fields.connectionName,
      grantId: fields.grantId,
      sessionId: fields.sessionId,
      protocol: fields.protocol,
    };
    const now = timers.now();
    const problem = auditEventProblem({ id: newId('evt', now), time: isoTime(now), action: 'session.audit', outcome: 'allowed', ...shared, details: { ...detailsPrefix } });
    if (problem !== undefined) throw invalidEvent(problem);
    // `"nodeId":…,"protocol":…` and `{"tunnelId":…` (or `{`): every event of the session starts the same.
    const fixed = JSON.stringify(shared).slice(1, -1);
    const detailsOpen = JSON.stringify(detailsPrefix).slice(0, -1);
    const bare = detailsOpen.length === 1;
    const encode = (id: string, ms: number, action: string, outcome: string, details: Record<string, unknown>): string => {
      const d = JSON.stringify(details);
      // A key of `details` repeating one of the prefix comes later and wins, as a spread would.
      const body = d.length === 2 ? (bare ? '{}' : `${detailsOpen}}`) : bare ? d : `${detailsOpen},${d.slice(1)}`;
      return `{"id":"${id}","time":"${isoTime(ms)}","action":"${action}","outcome":"${outcome}",${fixed},"details":${body}}`;
    };
    const check = (action: string, outcome: unknown, details: unknown, decision: boolean): AppError | undefined => {
      if (!isAuditOutcome(outcome) || isDecisionOutcome(outcome) !== decision) return invalidEvent(decision ? 'outcome: a decision is allowed or denied' : 'outcome: an outcome is success, failure or error');
      if (!isAuditAction(action)) return invalidEvent('action: must be a dotted lowercase action name');
      if (!isAuditDetails(details)) return invalidEvent('details: must be an object of plain JSON values');
      return undefined;
    };
    return {
      canAccept: () => spool.admission() === 'ok',
      decision: (action, outcome, details) => {
        const bad = check(action, outcome, details, true);
        if (bad !== undefined) return Promise.reject(bad);
        const refused = admissionError(spool);
        if (refused !== undefined) return Promise.reject(refused);
        const ms = timers.now();
        const id = newId('evt', ms);
        return spool.appendJson(id, encode(id, ms, action, outcome, details));
      },
      outcome: (action, outcome, details) => {
        const bad = check(action, outcome, details, false);
        if (bad !== undefined) return Promise.resolve(this.lostOutcome(undefined, action, fields, bad));
        const ms = timers.now();
        const id = newId('evt', ms);
        return spool.appendJson(id, encode(id, ms, action, outcome, details)).then(returnTrue, (err: unknown) => this.lostOutcome(id, action, fields, err));
      },
    };
  }

  private lostOutcome(eventId: string | undefined, action: string, fields: Pick<AuditEvent, 'connectionId' | 'sessionId'>, err: unknown): false {
    this.lost += 1;
    // Ids and the action only: details may hold SQL text.
    this.logger.error('Audit outcome could not be recorded.', {
      eventId,
      action,
      connectionId: fields.connectionId,
      sessionId: fields.sessionId,
      code: isAppError(err) ? err.code : undefined,
      error: isAppError(err) ? undefined : err,
    });
    return false;
  }

  private complete(draft: AuditEventDraft & { readonly outcome: AuditEvent['outcome'] }): AuditEvent {
    const now = this.timers.now();
    return {
      ...draft,
      id: draft.id ?? newId('evt', now),
      time: draft.time ?? isoTime(now),
      nodeId: this.nodeId,
    };
  }
}
