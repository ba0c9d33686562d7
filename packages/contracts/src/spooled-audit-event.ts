import { z } from 'zod';

const ID_FIELD = z.string().max(128);

/** Decision outcomes: written before the action they allow (or instead of it). */
export const AUDIT_DECISION_OUTCOMES = ['allowed', 'denied'] as const;
/** Result outcomes: written after the action. */
export const AUDIT_RESULT_OUTCOMES = ['success', 'failure', 'error'] as const;
/** An event id: `evt_` and a ULID in lower-case Crockford base32. */
export const AUDIT_EVENT_ID_PATTERN = /^evt_[0-9a-hjkmnp-tv-z]{26}$/;
/** The protocols an event's session can be on. */
export const AUDIT_PROTOCOLS = ['postgres', 'http', 'tcp'] as const;
/** An event's action: a dotted lowercase name (at most 64 characters). */
export const AUDIT_ACTION_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;

/**
 * The JSON form of one audit event as a data-plane node spools it and ships it
 * (`IngestAuditRequest.spooled_events`): the node checks every event against it
 * before it enters the spool, and the control plane checks every event it
 * receives so. Strict: no other field.
 */
export const spooledAuditEventSchema = z.strictObject({
  id: z.string().regex(AUDIT_EVENT_ID_PATTERN, 'Must be an evt_ id.'),
  time: z.iso.datetime(),
  nodeId: z.string().min(1).max(128),
  action: z
    .string()
    .max(64)
    .regex(AUDIT_ACTION_PATTERN, 'Must be a dotted lowercase action name.'),
  outcome: z.enum([...AUDIT_DECISION_OUTCOMES, ...AUDIT_RESULT_OUTCOMES]),
  actor: z.strictObject({ id: ID_FIELD, name: z.string().max(256) }),
  connectionId: ID_FIELD,
  connectionName: z.string().max(256).optional(),
  grantId: ID_FIELD,
  sessionId: ID_FIELD,
  protocol: z.enum(AUDIT_PROTOCOLS),
  details: z.record(z.string(), z.json()),
});

/** A spooled audit event, as {@link spooledAuditEventSchema} reads it. */
export type SpooledAuditEvent = z.output<typeof spooledAuditEventSchema>;
