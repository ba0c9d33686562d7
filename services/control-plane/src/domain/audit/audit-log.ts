import { newId, redact, type Logger } from '@pa/kit';
import type { Queryable } from '../../db/pool';
import type { Principal, RequestMeta } from '../permissions';

export type AuditOutcome = 'success' | 'failure' | 'denied' | 'allowed' | 'error';

/** One audit event as written. */
export interface AuditEventInput {
  readonly id?: string;
  readonly time?: Date;
  readonly action: string;
  readonly outcome: AuditOutcome;
  readonly actor?: { readonly id?: string | null; readonly name?: string | null } | null;
  readonly targetType?: string;
  readonly targetId?: string;
  readonly connectionId?: string;
  readonly grantId?: string;
  readonly sessionId?: string;
  readonly nodeId?: string;
  readonly request?: RequestMeta;
  /** Free-form details; secrets are redacted before storage. */
  readonly details?: Record<string, unknown>;
}

/** Returns the actor part of an audit event for a principal. */
export const actorOf = (p: Principal | null | undefined): AuditEventInput['actor'] =>
  p ? { id: p.userId, name: p.username } : null;

/**
 * Writes audit events to PostgreSQL. Inside a transaction, pass the
 * transaction so the event commits (or not) with the change it describes.
 * Ingestion is idempotent by event id.
 */
export class AuditLog {
  constructor(
    private readonly db: Queryable,
    private readonly logger: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async record(event: AuditEventInput, tx: Queryable = this.db): Promise<string> {
    return (await this.insert(event, tx)).id;
  }

  /** Stores an event shipped by a node; `duplicate` when its id was already stored (idempotent ingestion). */
  async ingest(event: AuditEventInput & { id: string }): Promise<'stored' | 'duplicate'> {
    return (await this.insert(event, this.db)).inserted ? 'stored' : 'duplicate';
  }

  private async insert(event: AuditEventInput, tx: Queryable): Promise<{ id: string; inserted: boolean }> {
    const id = event.id ?? newId('evt');
    const { rowCount } = await tx.query(
      `INSERT INTO audit_events (id, time, actor_id, actor_name, action, outcome, target_type, target_id,
         connection_id, grant_id, session_id, node_id, request_id, source_ip, user_agent, details)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      [
        id,
        event.time ?? this.clock(),
        event.actor?.id ?? null,
        event.actor?.name ?? null,
        event.action,
        event.outcome,
        event.targetType ?? null,
        event.targetId ?? null,
        event.connectionId ?? null,
        event.grantId ?? null,
        event.sessionId ?? null,
        event.nodeId ?? null,
        event.request?.requestId ?? null,
        event.request?.sourceIp ?? null,
        event.request?.userAgent ?? null,
        JSON.stringify(redact(event.details ?? {})),
      ],
    );
    return { id, inserted: (rowCount ?? 0) > 0 };
  }

  /**
   * Records an event on a path where the caller must not fail because audit
   * failed (e.g. a login failure being reported): failures are logged.
   */
  async recordSafely(event: AuditEventInput): Promise<void> {
    try {
      await this.record(event);
    } catch (err) {
      this.logger.error('Audit event could not be written.', { err, action: event.action });
    }
  }
}
