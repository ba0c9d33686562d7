import { spooledAuditEventSchema } from '@pa/contracts';
import type { AuditEventInput, AuditOutcome as StoredOutcome } from '../domain/audit/audit-log';

/**
 * Events a node ships as it spooled them (IngestAuditRequest.spooled_events):
 * the UTF-8 JSON of the data plane's spool event, checked here with the
 * contract's schema (the node checked them when it wrote them; a control plane
 * trusts no node's bytes) and mapped to the stored form exactly as the
 * structured `events` are, so the audit trail does not depend on which field a
 * node used.
 */

/** A spooled event read: the event to store (with its node), or why it is refused (with its id when it could be found). */
export type SpooledEventRead =
  | { readonly ok: true; readonly nodeId: string; readonly event: AuditEventInput & { id: string } }
  | { readonly ok: false; readonly eventId: string; readonly message: string };

/** The id at the head of a payload that could not be read as a whole (to acknowledge it as rejected). */
const headId = (text: string): string => /^\{"id":"(evt_[0-9a-hjkmnp-tv-z]{26})"/.exec(text)?.[1] ?? '';

/** Reads one spooled event. */
export const readSpooledEvent = (json: Uint8Array): SpooledEventRead => {
  const text = Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, eventId: headId(text), message: 'the spooled event is not JSON' };
  }
  const parsed = spooledAuditEventSchema.safeParse(value);
  if (!parsed.success) {
    const id = typeof (value as { id?: unknown } | null)?.id === 'string' ? String((value as { id: string }).id).slice(0, 128) : headId(text);
    const issue = parsed.error.issues[0];
    return { ok: false, eventId: id, message: `the spooled event is not valid: ${issue ? `${issue.path.join('.') || '(event)'}: ${issue.message}` : 'unknown problem'}` };
  }
  const e = parsed.data;
  // As IngestAudit stores a structured event: the details with the exact outcome and the protocol.
  const details: Record<string, unknown> = { ...e.details, outcome: e.outcome, protocol: e.protocol };
  if (e.connectionName) details.connectionName = e.connectionName;
  return {
    ok: true,
    nodeId: e.nodeId,
    event: {
      id: e.id,
      time: new Date(e.time),
      action: e.action,
      outcome: e.outcome satisfies StoredOutcome,
      actor: { id: e.actor.id || null, name: e.actor.name || null },
      ...(e.connectionId ? { connectionId: e.connectionId } : {}),
      ...(e.grantId ? { grantId: e.grantId } : {}),
      ...(e.sessionId ? { sessionId: e.sessionId } : {}),
      nodeId: e.nodeId,
      details,
    },
  };
};
