import { z } from 'zod';

/** Decision outcomes: written before the action they allow (or instead of it). */
export const DECISION_OUTCOMES = ['allowed', 'denied'] as const;
/** Result outcomes: written after the action. */
export const RESULT_OUTCOMES = ['success', 'failure', 'error'] as const;
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

const ID_FIELD = z.string().max(128);

/**
 * Strict schema of {@link AuditEvent}: applied when an event enters the spool, so
 * everything on disk can be read back and shipped, and again when it is read back.
 */
export const auditEventSchema = z.strictObject({
  id: z.string().regex(/^evt_[0-9a-hjkmnp-tv-z]{26}$/, 'Must be an evt_ id.'),
  time: z.iso.datetime(),
  nodeId: z.string().min(1).max(128),
  action: z
    .string()
    .max(64)
    .regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/, 'Must be a dotted lowercase action name.'),
  outcome: z.enum(AUDIT_OUTCOMES),
  actor: z.strictObject({ id: ID_FIELD, name: z.string().max(256) }),
  connectionId: ID_FIELD,
  connectionName: z.string().max(256).optional(),
  grantId: ID_FIELD,
  sessionId: ID_FIELD,
  protocol: z.enum(['postgres', 'http', 'tcp']),
  details: z.record(z.string(), z.json()),
});

// Compile-time check that the schema's output is an AuditEvent.
const _schemaMatchesType = (e: z.output<typeof auditEventSchema>): AuditEvent => e;

/** Whether `outcome` is one a decision event carries (`allowed`, `denied`). */
export const isDecisionOutcome = (outcome: AuditOutcome): outcome is AuditDecisionOutcome =>
  (DECISION_OUTCOMES as readonly string[]).includes(outcome);
