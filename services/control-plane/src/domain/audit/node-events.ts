import type { Logger } from '@pa/kit';
import type { RequestMeta } from '../permissions';
import type { AuditLog } from './audit-log';

/**
 * Audit events shipped by a data-plane node must be its own. A node calls
 * IngestAudit as one node id — the id it sends with the call, which the node's
 * certificate proves when mutual TLS binds node ids (the shared node token
 * alone proves only that the caller is one of the nodes) — and every event it
 * ships must carry that id: an event naming another node would
 * put words in that node's mouth in the audit trail (a bug, a spool directory
 * copied from another node, or a node impersonating one). Such events are
 * refused one by one; the rest of the batch is stored as usual.
 */

/** Whether an event claiming `eventNodeId` may be ingested from the node `sender`. */
export const isOwnEvent = (sender: string, eventNodeId: string): boolean => eventNodeId === sender;

/** The safe reason given to the sending node for a refused event. */
export const foreignEventReason = (sender: string, eventNodeId: string): string =>
  `the event names node "${eventNodeId}", but it was sent by node "${sender}": a node may only ship its own events`;

/** Most event ids and node ids written into the suspicious-batch audit event. */
const MAX_LISTED = 20;

/** One refused event: its id and the node it claimed. */
export interface ForeignEvent {
  readonly eventId: string;
  readonly nodeId: string;
}

/**
 * Reports, once per batch, that a node shipped events in another node's name:
 * one warning log line and one `node.audit_mismatch` audit event (outcome
 * `denied`, on the sending node) listing how many were refused and which ids
 * they claimed. Never throws: the acknowledgements still go back to the node.
 */
export const reportForeignEvents = async (audit: AuditLog, logger: Logger, sender: string, refused: readonly ForeignEvent[], request: RequestMeta): Promise<void> => {
  if (refused.length === 0) return;
  const claimedNodeIds = [...new Set(refused.map((e) => e.nodeId))].slice(0, MAX_LISTED);
  const eventIds = refused.slice(0, MAX_LISTED).map((e) => e.eventId);
  logger.warn('Audit events naming another node were refused.', { nodeId: sender, claimedNodeIds, events: refused.length, sourceIp: request.sourceIp });
  await audit.recordSafely({
    action: 'node.audit_mismatch',
    outcome: 'denied',
    nodeId: sender,
    targetType: 'node',
    targetId: sender,
    request,
    details: { reason: 'audit events naming another node were refused', events: refused.length, claimedNodeIds, eventIds, errorCode: 'AUDIT_NODE_MISMATCH' },
  });
};
