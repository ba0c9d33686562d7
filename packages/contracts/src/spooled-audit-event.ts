import { z } from 'zod';

const ID_FIELD = z.string().max(128);

/**
 * The JSON form of one audit event as a data-plane node spools it and ships it
 * (`IngestAuditRequest.spooled_events`): the node checks every event against it
 * before it enters the spool, and the control plane checks every event it
 * receives so. Strict: no other field.
 */
export const spooledAuditEventSchema = z.strictObject({
  id: z.string().regex(/^evt_[0-9a-hjkmnp-tv-z]{26}$/, 'Must be an evt_ id.'),
  time: z.iso.datetime(),
  nodeId: z.string().min(1).max(128),
  action: z
    .string()
    .max(64)
    .regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/, 'Must be a dotted lowercase action name.'),
  outcome: z.enum(['allowed', 'denied', 'success', 'failure', 'error']),
  actor: z.strictObject({ id: ID_FIELD, name: z.string().max(256) }),
  connectionId: ID_FIELD,
  connectionName: z.string().max(256).optional(),
  grantId: ID_FIELD,
  sessionId: ID_FIELD,
  protocol: z.enum(['postgres', 'http', 'tcp']),
  details: z.record(z.string(), z.json()),
});

/** A spooled audit event, as {@link spooledAuditEventSchema} reads it. */
export type SpooledAuditEvent = z.output<typeof spooledAuditEventSchema>;
