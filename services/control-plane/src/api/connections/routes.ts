import { z } from 'zod';
import { AppError } from '@pa/kit';
import { PROTOCOLS, tagsSchema } from '@pa/policy';
import { TLS_MODES, type ConnectionService } from '../../domain/connections/connections';
import type { GrantService } from '../../domain/grants/grants';
import { route, mustPrincipal } from '../route';
import { idParam, name63, pageOf, pageQuery, problemSchema } from '../schemas';

const credentialSummary = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('password'), username: z.string() }),
  z.object({ kind: z.literal('header'), headerName: z.string() }),
]);

export const connectionSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    protocol: z.enum(PROTOCOLS),
    host: z.string(),
    port: z.number().int(),
    tlsMode: z.enum(TLS_MODES),
    database: z.string().nullable(),
    description: z.string(),
    tags: z.record(z.string(), z.string()),
    metadata: z.record(z.string(), z.unknown()),
    maxGrantSeconds: z.number().int(),
    credential: credentialSummary.nullable().describe('Whether a backend credential is set, and its non-secret parts. The secret is write-only.'),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Connection' });

const reachableSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    protocol: z.enum(PROTOCOLS),
    description: z.string(),
    tags: z.record(z.string(), z.string()),
    database: z.string().nullable(),
    maxGrantSeconds: z.number().int(),
  })
  .meta({ id: 'ReachableConnection' });

/** A host name or IP literal: no scheme, path, port or spaces. */
const host = z
  .string()
  .trim()
  .min(1)
  .max(253)
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|[0-9a-fA-F:]+)$/, 'a host name or IP address');

const headerName = z.string().min(1).max(100).regex(/^[!#$%&'*+.^`|~0-9A-Za-z-]+$/, 'an HTTP header name (no underscores or spaces)').refine((h) => !h.includes('_'), 'no underscores');

export const credentialInput = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('password'), username: z.string().min(1).max(200), password: z.string().min(1).max(1000) }),
  z.strictObject({ kind: z.literal('header'), headerName, value: z.string().min(1).max(8000) }),
]);

const connectionBody = z.strictObject({
  name: name63,
  protocol: z.enum(PROTOCOLS),
  host,
  port: z.number().int().min(1).max(65535),
  tlsMode: z.enum(TLS_MODES).optional(),
  database: z.string().min(1).max(63).nullable().optional(),
  description: z.string().max(1000).optional(),
  tags: tagsSchema.optional(),
  metadata: z.record(z.string().max(100), z.unknown()).optional(),
  maxGrantSeconds: z.number().int().min(60).max(7 * 86_400).optional(),
  credential: credentialInput.nullable().optional().describe('Write-only backend credential; null removes it.'),
});

/** The fields the cross-field checks look at, as they will be stored. */
interface CombinationState {
  database?: string | null;
  credential?: { kind: 'password' | 'header' } | null;
}

/** Cross-field checks: a header credential is for HTTP; a database only for PostgreSQL. */
const checkCombination = (state: CombinationState, protocol: string): void => {
  const problems = [];
  if (state.credential?.kind === 'header' && protocol !== 'http') problems.push({ path: 'body.credential.kind', message: 'header credentials are for http connections' });
  if (state.credential?.kind === 'password' && protocol === 'tcp') problems.push({ path: 'body.credential.kind', message: 'tcp connections take no credential' });
  if (state.database && protocol !== 'postgres') problems.push({ path: 'body.database', message: 'only postgres connections have a database' });
  if (problems.length) throw new AppError('VALIDATION_FAILED', { details: problems });
};

export const connectionRoutes = (connections: ConnectionService, grants: GrantService) => [
  route({
    method: 'get',
    path: '/connections',
    summary: 'Connections you may reach (or, with scope=all and connections:read, every connection)',
    tag: 'connections',
    access: 'user',
    query: pageQuery.extend({
      scope: z.enum(['reachable', 'all']).default('reachable'),
      protocol: z.enum(PROTOCOLS).optional(),
      tag: z.string().regex(/^[^=]+=.*$/, 'key=value').optional(),
    }),
    responses: { 200: { description: 'Connections', schema: pageOf(z.union([reachableSchema, connectionSchema])) }, 403: { description: 'scope=all without connections:read', schema: problemSchema } },
    handler: async (ctx) => {
      const p = mustPrincipal(ctx);
      const { query } = ctx;
      if (query.scope === 'all') {
        await ctx.demand('connections:read', 'You need the connections:read permission to list every connection.');
        const tag = query.tag ? ([query.tag.slice(0, query.tag.indexOf('=')), query.tag.slice(query.tag.indexOf('=') + 1)] as [string, string]) : undefined;
        return { body: await connections.list(query.limit, query.cursor, { ...(query.protocol ? { protocol: query.protocol } : {}), ...(tag ? { tag } : {}) }) };
      }
      const items = (await connections.listReachable(p)).filter((c) => !query.protocol || c.protocol === query.protocol);
      return { body: { items, nextCursor: null } };
    },
  }),
  route({
    method: 'post',
    path: '/connections',
    summary: 'Create a connection',
    tag: 'connections',
    access: 'connections:write',
    body: connectionBody,
    responses: { 201: { description: 'Created', schema: connectionSchema }, 409: { description: 'Name taken', schema: problemSchema } },
    handler: async (ctx) => {
      checkCombination(ctx.body, ctx.body.protocol);
      return { status: 201, body: await connections.create(ctx.body, mustPrincipal(ctx), ctx.meta) };
    },
  }),
  route({
    method: 'get',
    path: '/connections/:id',
    summary: 'Get a connection by id or name',
    tag: 'connections',
    access: 'connections:read',
    params: idParam,
    responses: { 200: { description: 'The connection', schema: connectionSchema }, 404: { description: 'No such connection', schema: problemSchema } },
    handler: async ({ params }) => ({ body: await connections.get(params.id) }),
  }),
  route({
    method: 'patch',
    path: '/connections/:id',
    summary: 'Update a connection (credential: write-only; null removes it)',
    tag: 'connections',
    access: 'connections:write',
    params: idParam,
    body: connectionBody.partial(),
    responses: { 200: { description: 'Updated', schema: connectionSchema }, 404: { description: 'No such connection', schema: problemSchema } },
    handler: async (ctx) => {
      const current = await connections.get(ctx.params.id);
      // Check the connection as it will be, not just the patch: changing only the
      // protocol must not leave a database or credential the new protocol cannot use.
      checkCombination(
        {
          database: ctx.body.database !== undefined ? ctx.body.database : current.database,
          credential: ctx.body.credential !== undefined ? ctx.body.credential : current.credential,
        },
        ctx.body.protocol ?? current.protocol,
      );
      return { body: await connections.update(current.id, ctx.body, mustPrincipal(ctx), ctx.meta) };
    },
  }),
  route({
    method: 'delete',
    path: '/connections/:id',
    summary: 'Delete a connection',
    tag: 'connections',
    access: 'connections:write',
    params: idParam,
    responses: { 204: { description: 'Deleted' }, 404: { description: 'No such connection', schema: problemSchema } },
    handler: async (ctx) => {
      const target = await connections.get(ctx.params.id);
      // Grants carry the upstream address: end their sessions first, or they would outlive the connection.
      await grants.revokeConnectionSessions(target.id, 'connection deleted');
      await connections.delete(target.id, mustPrincipal(ctx), ctx.meta);
      return { status: 204 };
    },
  }),
];
