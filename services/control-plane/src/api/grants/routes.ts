import { z } from 'zod';
import type { GrantService } from '../../domain/grants/grants';
import type { NodeRegistry } from '../../domain/nodes/nodes';
import { route, mustPrincipal } from '../route';
import { idParam, pageOf, pageQuery, problemSchema } from '../schemas';

export const grantSchema = z
  .object({
    id: z.string(),
    userId: z.string(),
    username: z.string(),
    connectionId: z.string(),
    connectionName: z.string(),
    sessionId: z.string(),
    policyHash: z.string(),
    issuedAt: z.string(),
    expiresAt: z.string(),
    sessionEndsAt: z.string(),
    renewedFrom: z.string().nullable(),
    revokedAt: z.string().nullable(),
    revokeReason: z.string().nullable(),
    active: z.boolean(),
  })
  .meta({ id: 'Grant' });

const nodeSchema = z
  .object({
    id: z.string(),
    version: z.string(),
    tunnelUrl: z.string(),
    protocols: z.array(z.string()),
    load: z.record(z.string(), z.unknown()),
    registeredAt: z.string(),
    lastSeenAt: z.string(),
    draining: z.boolean(),
    live: z.boolean(),
  })
  .meta({ id: 'Node' });

export const grantRoutes = (grants: GrantService, nodes: NodeRegistry) => [
  route({
    method: 'get',
    path: '/grants',
    summary: 'List issued grants (never their tokens)',
    tag: 'grants',
    access: 'grants:read',
    query: pageQuery.extend({
      user: z.string().max(100).optional(),
      connection: z.string().max(100).optional(),
      active: z.enum(['true', 'false']).optional(),
    }),
    responses: { 200: { description: 'A page of grants', schema: pageOf(grantSchema) } },
    handler: async ({ query }) => ({
      body: await grants.list({ ...(query.user ? { user: query.user } : {}), ...(query.connection ? { connection: query.connection } : {}), ...(query.active ? { active: query.active === 'true' } : {}) }, query.limit, query.cursor),
    }),
  }),
  route({
    method: 'get',
    path: '/grants/:id',
    summary: 'Get a grant',
    tag: 'grants',
    access: 'grants:read',
    params: idParam,
    responses: { 200: { description: 'The grant', schema: grantSchema }, 404: { description: 'No such grant', schema: problemSchema } },
    handler: async ({ params }) => ({ body: await grants.get(params.id) }),
  }),
  route({
    method: 'post',
    path: '/grants/:id/revoke',
    summary: "Revoke a grant: its session's tunnels close on every node within seconds and it cannot be renewed",
    tag: 'grants',
    access: 'grants:revoke',
    params: idParam,
    body: z.strictObject({ reason: z.string().min(1).max(500).default('revoked by an administrator') }),
    responses: { 200: { description: 'The revoked grant', schema: grantSchema }, 404: { description: 'No such grant', schema: problemSchema } },
    handler: async (ctx) => ({ body: await grants.revoke(ctx.params.id, mustPrincipal(ctx), ctx.body.reason, ctx.meta) }),
  }),
  route({
    method: 'get',
    path: '/nodes',
    summary: 'Data-plane nodes: registered, live, draining, load',
    tag: 'grants',
    access: 'grants:read',
    responses: { 200: { description: 'Nodes', schema: z.object({ items: z.array(nodeSchema) }) } },
    handler: async () => ({ body: { items: await nodes.list() } }),
  }),
];

/** Public discovery: where the gRPC API is, for the CLI. */
export const infoRoutes = (info: () => { version: string; grpc: { url: string; tls: boolean } }) => [
  route({
    method: 'get',
    path: '/info',
    summary: 'Server version and where its gRPC API listens (for the pa CLI)',
    tag: 'auth',
    access: 'public',
    responses: { 200: { description: 'Discovery document', schema: z.object({ version: z.string(), grpc: z.object({ url: z.string(), tls: z.boolean() }) }) } },
    handler: async () => ({ body: info() }),
  }),
];
