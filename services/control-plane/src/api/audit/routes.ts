import { once } from 'node:events';
import { z } from 'zod';
import { AppError } from '@pa/kit';
import type { AuditFilter, AuditQuery } from '../../domain/audit/audit-query';
import { route } from '../route';
import { pageOf, pageQuery, problemSchema } from '../schemas';

export const auditEventSchema = z
  .object({
    id: z.string(),
    time: z.string(),
    recordedAt: z.string(),
    actor: z.object({ id: z.string().nullable(), name: z.string().nullable() }),
    action: z.string(),
    outcome: z.string(),
    target: z.object({ type: z.string().nullable(), id: z.string().nullable() }),
    connectionId: z.string().nullable(),
    grantId: z.string().nullable(),
    sessionId: z.string().nullable(),
    nodeId: z.string().nullable(),
    request: z.object({ requestId: z.string().nullable(), sourceIp: z.string().nullable(), userAgent: z.string().nullable() }),
    details: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEvent' });

const filterQuery = z.object({
  actor: z.string().max(100).optional().describe('User id or username'),
  action: z.string().max(100).regex(/^[a-z_.*]+$/).optional().describe('Exact action, or a prefix ending in .* (auth.*)'),
  connection: z.string().max(100).optional().describe('Connection id'),
  outcome: z.enum(['success', 'failure', 'denied', 'allowed', 'error']).optional(),
  target: z.string().max(100).optional().describe('Target id'),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
});

const toFilter = (q: z.infer<typeof filterQuery>): AuditFilter => {
  if (q.from && q.to && Date.parse(q.from) >= Date.parse(q.to)) {
    throw new AppError('VALIDATION_FAILED', { details: [{ path: 'query.to', message: 'must be after from' }] });
  }
  return {
    ...(q.actor ? { actor: q.actor } : {}),
    ...(q.action ? { action: q.action } : {}),
    ...(q.connection ? { connection: q.connection } : {}),
    ...(q.outcome ? { outcome: q.outcome } : {}),
    ...(q.target ? { targetId: q.target } : {}),
    ...(q.from ? { from: new Date(q.from) } : {}),
    ...(q.to ? { to: new Date(q.to) } : {}),
  };
};

const EXPORT_BATCH = 1000;

export const auditRoutes = (audit: AuditQuery) => [
  route({
    method: 'get',
    path: '/audit/events',
    summary: 'Search the audit trail (newest first)',
    tag: 'audit',
    access: 'audit:read',
    query: pageQuery.extend(filterQuery.shape),
    responses: { 200: { description: 'A page of events', schema: pageOf(auditEventSchema) }, 400: { description: 'Bad filter', schema: problemSchema } },
    handler: async ({ query }) => ({ body: await audit.search(toFilter(query), query.limit, query.cursor) }),
  }),
  route({
    method: 'get',
    path: '/audit/export',
    summary: 'Export the matching audit trail as JSON Lines (streamed, newest first)',
    tag: 'audit',
    access: 'audit:read',
    query: filterQuery,
    responses: { 200: { description: 'One event per line', contentType: 'application/x-ndjson', schema: auditEventSchema } },
    handler: async ({ query, res }) => {
      const filter = toFilter(query);
      res.status(200).type('application/x-ndjson');
      res.setHeader('Content-Disposition', 'attachment; filename="audit-events.jsonl"');
      let cursor: string | undefined;
      do {
        const page = await audit.search(filter, EXPORT_BATCH, cursor);
        for (const event of page.items) {
          // Wait for the client to take the data; stop if it goes away meanwhile.
          if (!res.write(`${JSON.stringify(event)}\n`)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
          if (res.destroyed) break;
        }
        cursor = page.nextCursor ?? undefined;
      } while (cursor && !res.destroyed);
      res.end();
      return undefined;
    },
  }),
];
