import { AUDIT_ACTION_PATTERN, AUDIT_DECISION_OUTCOMES, AUDIT_EVENT_ID_PATTERN, AUDIT_PROTOCOLS, AUDIT_RESULT_OUTCOMES, spooledAuditEventSchema } from '@pa/contracts';
import type { z } from 'zod';

/** Decision outcomes: written before the action they allow (or instead of it). */
export const DECISION_OUTCOMES = AUDIT_DECISION_OUTCOMES;
/** Result outcomes: written after the action. */
export const RESULT_OUTCOMES = AUDIT_RESULT_OUTCOMES;
/** Every outcome an audit event can carry. */
export const AUDIT_OUTCOMES = [...DECISION_OUTCOMES, ...RESULT_OUTCOMES] as const;

/** What a decision event says: the action was allowed or denied. */
export type AuditDecisionOutcome = (typeof DECISION_OUTCOMES)[number];
/** What an outcome event says: how the allowed action ended. */
export type AuditResultOutcome = (typeof RESULT_OUTCOMES)[number];
/** Decision or result outcome of one audit event. */
export type AuditOutcome = AuditDecisionOutcome | AuditResultOutcome;

/** Protocol of the connection an event belongs to (the data-plane handler that relayed it). */
export type AuditProtocol = 'postgres' | 'http' | 'tcp';

/** The user an event is attributed to, from the grant. */
export interface AuditActor {
  /** User id (`usr_…`); empty when the grant could not be read (e.g. `tunnel.denied`). */
  readonly id: string;
  /** User name at the time of the grant. */
  readonly name: string;
}

/**
 * One audit record as a protocol handler emits it: one per decision (before the
 * action it allows) and one per outcome (after). `id` is the idempotency key the
 * control plane ingests by, so a re-shipped event is stored once.
 *
 * Id fields that cannot be known yet (a `tunnel.denied` before the grant could be
 * read) are empty strings, as in the proto3 contract.
 */
export interface AuditEvent {
  /** Unique event id (`evt_…`, from `newId('evt')`). */
  readonly id: string;
  /** When the event happened by the node's clock, ISO 8601 in UTC. */
  readonly time: string;
  /** Id of the node that recorded the event. */
  readonly nodeId: string;
  /** Dotted action name: `session.start`, `sql.statement`, `http.response`, `tunnel.denied`… */
  readonly action: string;
  readonly outcome: AuditOutcome;
  readonly actor: AuditActor;
  /** Connection id (`con_…`). */
  readonly connectionId: string;
  readonly connectionName?: string;
  /** Grant id (`grt_…`) the action was admitted under. */
  readonly grantId: string;
  /** Session id (`ses_…`) shared by a grant and its renewals. */
  readonly sessionId: string;
  readonly protocol: AuditProtocol;
  /**
   * Protocol-specific detail (SQL text, fingerprint, HTTP method/path/status,
   * byte counts, policy decision…). Plain JSON only: `undefined`, `NaN`, bigint,
   * Date and class instances are rejected. Never credentials.
   */
  readonly details: Record<string, unknown>;
}


/**
 * Strict schema of {@link AuditEvent}: applied when an event enters the spool, so
 * everything on disk can be read back and shipped, and again when it is read back.
 * It is the wire contract's (`@pa/contracts`): the control plane checks spooled
 * events it receives with the same schema.
 */
export const auditEventSchema = spooledAuditEventSchema;

// Compile-time check that the schema's output is an AuditEvent.
const _schemaMatchesType = (e: z.output<typeof auditEventSchema>): AuditEvent => e;

/** Whether `outcome` is one a decision event carries (`allowed`, `denied`). */
export const isDecisionOutcome = (outcome: AuditOutcome): outcome is AuditDecisionOutcome =>
  (DECISION_OUTCOMES as readonly string[]).includes(outcome);

const ISO_UTC_RE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?Z$/;
const OUTCOMES: ReadonlySet<string> = new Set(AUDIT_OUTCOMES);
const PROTOCOLS: ReadonlySet<string> = new Set(AUDIT_PROTOCOLS);
const EVENT_KEYS: ReadonlySet<string> = new Set(['id', 'time', 'nodeId', 'action', 'outcome', 'actor', 'connectionId', 'connectionName', 'grantId', 'sessionId', 'protocol', 'details']);
const MAX_JSON_DEPTH = 64;

const isPlainObject = (v: object): boolean => {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
};

const isIdField = (v: unknown): boolean => typeof v === 'string' && v.length <= 128;

/** Whether `v` is plain JSON: what JSON.stringify writes and JSON.parse reads back unchanged. */
const isPlainJson = (v: unknown, depth: number): boolean => {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(v);
    case 'object': {
      if (v === null) return true;
      if (depth >= MAX_JSON_DEPTH) return false;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i += 1) if (!isPlainJson(v[i], depth + 1)) return false;
        return true;
      }
      if (!isPlainObject(v)) return false;
      for (const key in v) {
        if (!Object.hasOwn(v, key)) return false;
        if (!isPlainJson((v as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
};

/** Whether `details` may be an event's `details`: an object of plain JSON values. */
export const isAuditDetails = (details: unknown): details is Record<string, unknown> =>
  typeof details === 'object' && details !== null && !Array.isArray(details) && isPlainJson(details, 0);

const validActions = new Set<string>();

/** Whether `action` is a valid event action (the names are few and fixed: checked once each). */
export const isAuditAction = (action: unknown): action is string => {
  if (validActions.has(action as string)) return true;
  if (typeof action !== 'string' || action.length > 64 || !AUDIT_ACTION_PATTERN.test(action)) return false;
  if (validActions.size < 1024) validActions.add(action);
  return true;
};

/** Whether `outcome` is one of {@link AUDIT_OUTCOMES}. */
export const isAuditOutcome = (outcome: unknown): outcome is AuditOutcome => typeof outcome === 'string' && OUTCOMES.has(outcome);

/**
 * The first problem of an event that {@link auditEventSchema} would point out,
 * or undefined when it is valid. A hand-written check for the append path
 * (two events per statement on the proxy's hot path; the schema costs ~15 µs an
 * event there, this ~1 µs). It never accepts what the schema rejects (a test
 * holds them together); the schema still checks every event read back.
 */
export const auditEventProblem = (e: unknown): string | undefined => {
  if (typeof e !== 'object' || e === null || Array.isArray(e) || !isPlainObject(e)) return 'the event is not an object';
  const v = e as Record<string, unknown>;
  for (const key in v) if (!EVENT_KEYS.has(key) || !Object.hasOwn(v, key)) return `unknown field ${key}`;
  if (typeof v.id !== 'string' || !AUDIT_EVENT_ID_PATTERN.test(v.id)) return 'id: must be an evt_ id';
  if (typeof v.time !== 'string' || !ISO_UTC_RE.test(v.time)) return 'time: must be an ISO 8601 time in UTC';
  if (typeof v.nodeId !== 'string' || v.nodeId.length < 1 || v.nodeId.length > 128) return 'nodeId: must be 1-128 characters';
  if (!isAuditAction(v.action)) return 'action: must be a dotted lowercase action name';
  if (!isAuditOutcome(v.outcome)) return 'outcome: unknown outcome';
  const actor = v.actor;
  if (typeof actor !== 'object' || actor === null || Array.isArray(actor) || !isPlainObject(actor)) return 'actor: must be an object';
  for (const key in actor) if ((key !== 'id' && key !== 'name') || !Object.hasOwn(actor, key)) return `actor: unknown field ${key}`;
  const a = actor as Record<string, unknown>;
  if (!isIdField(a.id)) return 'actor.id: must be a string of at most 128 characters';
  if (typeof a.name !== 'string' || a.name.length > 256) return 'actor.name: must be a string of at most 256 characters';
  if (!isIdField(v.connectionId)) return 'connectionId: must be a string of at most 128 characters';
  if (v.connectionName !== undefined && (typeof v.connectionName !== 'string' || v.connectionName.length > 256)) return 'connectionName: must be a string of at most 256 characters';
  if (!isIdField(v.grantId)) return 'grantId: must be a string of at most 128 characters';
  if (!isIdField(v.sessionId)) return 'sessionId: must be a string of at most 128 characters';
  if (typeof v.protocol !== 'string' || !PROTOCOLS.has(v.protocol)) return 'protocol: unknown protocol';
  if (!isAuditDetails(v.details)) return 'details: must be an object of plain JSON values';
  return undefined;
};
