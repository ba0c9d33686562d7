import { AppError } from '@pa/kit';
import type { Queryable } from '../../db/pool';
import { decodeCursor, encodeCursor } from '../pagination';

/**
 * Whether `t` is a cursor time as `time_key` writes it (UTC, microseconds), and
 * a real calendar time, so PostgreSQL reads it back losslessly and never fails.
 */
const isCursorTime = (t: string): boolean =>
  /^[1-9]\d{3}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/.test(t) && !Number.isNaN(Date.parse(t)) && new Date(t).toISOString().slice(0, 19) === t.slice(0, 19);

export interface AuditEvent {
  id: string;
  time: string;
  recordedAt: string;
  actor: { id: string | null; name: string | null };
  action: string;
  outcome: string;
  target: { type: string | null; id: string | null };
  connectionId: string | null;
  grantId: string | null;
  sessionId: string | null;
  nodeId: string | null;
  request: { requestId: string | null; sourceIp: string | null; userAgent: string | null };
  details: Record<string, unknown>;
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  connection?: string;
  outcome?: string;
  targetId?: string;
  from?: Date;
  to?: Date;
}

interface Row {
  id: string;
  time: Date;
  recorded_at: Date;
  actor_id: string | null;
  actor_name: string | null;
  action: string;
  outcome: string;
  target_type: string | null;
  target_id: string | null;
  connection_id: string | null;
  grant_id: string | null;
  session_id: string | null;
  node_id: string | null;
  request_id: string | null;
  source_ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
  /** `time` at full (microsecond) precision, for the cursor: a JS Date keeps only milliseconds. */
  time_key: string;
}

const toEvent = (r: Row): AuditEvent => ({
  id: r.id,
  time: r.time.toISOString(),
  recordedAt: r.recorded_at.toISOString(),
  actor: { id: r.actor_id, name: r.actor_name },
  action: r.action,
  outcome: r.outcome,
  target: { type: r.target_type, id: r.target_id },
  connectionId: r.connection_id,
  grantId: r.grant_id,
  sessionId: r.session_id,
  nodeId: r.node_id,
  request: { requestId: r.request_id, sourceIp: r.source_ip, userAgent: r.user_agent },
  details: r.details,
});

/**
 * Reads the audit trail newest first, with keyset pagination on (time, id).
 * `actor` matches the actor's id or name; `action` matches exactly or, ending
 * in `.*`, by prefix (`auth.*`).
 */
export class AuditQuery {
  constructor(private readonly db: Queryable) {}

  async search(filter: AuditFilter, limit: number, cursor?: string): Promise<{ items: AuditEvent[]; nextCursor: string | null }> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown): string => {
      args.push(v);
      return `$${args.length}`;
    };
    if (filter.actor) {
      const a = arg(filter.actor);
      where.push(`(actor_id = ${a} OR lower(actor_name) = lower(${a}))`);
    }
    if (filter.action) {
      if (filter.action.endsWith('.*')) where.push(`action LIKE ${arg(`${filter.action.slice(0, -2).replace(/[\\%_]/g, '\\$&')}.%`)}`);
      else where.push(`action = ${arg(filter.action)}`);
    }
    if (filter.connection) where.push(`connection_id = ${arg(filter.connection)}`);
    if (filter.outcome) where.push(`outcome = ${arg(filter.outcome)}`);
    if (filter.targetId) where.push(`target_id = ${arg(filter.targetId)}`);
    if (filter.from) where.push(`time >= ${arg(filter.from)}`);
    if (filter.to) where.push(`time < ${arg(filter.to)}`);
    if (cursor) {
      const c = decodeCursor(cursor, ['t', 'id']);
      if (!isCursorTime(c.t as string)) throw new AppError('VALIDATION_FAILED', { details: [{ path: 'cursor', message: 'not a cursor returned by this API' }] });
      where.push(`(time, id) < (${arg(c.t)}::timestamptz, ${arg(c.id)})`);
    }
    const sql = `SELECT *, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS time_key
      FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY time DESC, id DESC LIMIT ${arg(limit + 1)}`;
    const { rows } = await this.db.query<Row>(sql, args);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(toEvent),
      nextCursor: rows.length > limit && last ? encodeCursor({ t: last.time_key, id: last.id }) : null,
    };
  }
}
