import { z } from 'zod';
import { AppError } from '@pa/kit';
import { policyDocumentSchema, ruleSchema, selectorSchema } from '@pa/policy';
import type { PolicyExplainer } from '../../domain/policies/explain';
import type { PolicyService } from '../../domain/policies/policies';
import { route, mustPrincipal } from '../route';
import { idParam, pageOf, pageQuery, problemSchema } from '../schemas';

export const policySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string(),
    enabled: z.boolean(),
    roles: z.array(z.string()),
    selector: selectorSchema,
    rules: z.array(ruleSchema),
    version: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Policy' });

const ifMatch = (header: string | undefined): number | undefined => {
  if (header === undefined) return undefined;
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(header.trim());
  if (!m) throw new AppError('VALIDATION_FAILED', { details: [{ path: 'headers.if-match', message: 'expected the policy version, e.g. "3"' }] });
  return Number(m[1]);
};

const explainBody = z
  .strictObject({
    connection: z.string().min(1).max(100).describe('Connection name or id'),
    user: z.string().min(1).max(100).optional().describe('Evaluate as this user (their roles)'),
    roles: z.array(z.string().min(1).max(63)).max(50).optional().describe('Or evaluate as these roles'),
    sql: z.string().max(1_048_576).optional(),
    http: z.strictObject({ method: z.string().min(1).max(32), target: z.string().min(1).max(8192), headers: z.record(z.string(), z.string()).optional() }).optional(),
    drafts: z.array(policyDocumentSchema).max(20).optional().describe('Unsaved policy documents (dry run): each replaces the stored policy of the same name, or is added'),
  })
  .refine((b) => (b.user === undefined) !== (b.roles === undefined), { message: 'give either user or roles', path: ['user'] })
  .refine((b) => (b.sql === undefined) !== (b.http === undefined), { message: 'give either sql or http', path: ['sql'] });

const explainResult = z
  .object({
    decision: z.enum(['allow', 'deny']),
    reason: z.string(),
    rule: z.object({ policyId: z.string(), policyName: z.string(), ruleId: z.string(), ruleName: z.string().optional() }).passthrough().nullable(),
    statements: z.array(z.record(z.string(), z.unknown())).optional(),
    target: z.string().nullable().optional(),
    method: z.string().optional(),
    trace: z.array(z.record(z.string(), z.unknown())).optional(),
    subject: z.object({ user: z.string().nullable(), roles: z.array(z.string()) }),
    connection: z.string(),
    policy: z.object({ hash: z.string(), policies: z.array(z.object({ id: z.string(), name: z.string(), version: z.number() })), rules: z.number() }),
  })
  .passthrough()
  .meta({ id: 'PolicyExplanation' });

export const policyRoutes = (policies: PolicyService, explainer: PolicyExplainer) => [
  route({
    method: 'post',
    path: '/policies/evaluate',
    summary: 'Explain: evaluate SQL or an HTTP request as a user (or roles) on a connection, optionally with unsaved drafts',
    tag: 'policies',
    access: 'policies:read',
    body: explainBody,
    responses: { 200: { description: 'The decision with its full breakdown', schema: explainResult }, 404: { description: 'No such connection or user', schema: problemSchema }, 422: { description: 'A draft is invalid', schema: problemSchema } },
    handler: async ({ body }) => ({ body: await explainer.explain(body) }),
  }),
  route({
    method: 'get',
    path: '/policies',
    summary: 'List policies',
    tag: 'policies',
    access: 'policies:read',
    query: pageQuery,
    responses: { 200: { description: 'A page of policies', schema: pageOf(policySchema) } },
    handler: async ({ query }) => ({ body: await policies.list(query.limit, query.cursor) }),
  }),
  route({
    method: 'post',
    path: '/policies',
    summary: 'Create a policy',
    tag: 'policies',
    access: 'policies:write',
    body: policyDocumentSchema,
    responses: { 201: { description: 'Created', schema: policySchema }, 409: { description: 'Name taken', schema: problemSchema }, 422: { description: 'Rules the engine cannot use', schema: problemSchema } },
    handler: async (ctx) => {
      const created = await policies.create(ctx.body, mustPrincipal(ctx), ctx.meta);
      return { status: 201, body: created, headers: { ETag: `"${created.version}"` } };
    },
  }),
  route({
    method: 'post',
    path: '/policies/validate',
    summary: 'Validate a policy document without saving it',
    tag: 'policies',
    access: 'policies:read',
    body: policyDocumentSchema,
    responses: { 200: { description: 'Valid; the document as it would be stored', schema: policyDocumentSchema }, 422: { description: 'Problems, each with its path', schema: problemSchema } },
    handler: async ({ body }) => ({ body: await policies.check(body) }),
  }),
  route({
    method: 'get',
    path: '/policies/:id',
    summary: 'Get a policy by id or name',
    tag: 'policies',
    access: 'policies:read',
    params: idParam,
    responses: { 200: { description: 'The policy', schema: policySchema }, 404: { description: 'No such policy', schema: problemSchema } },
    handler: async ({ params }) => {
      const p = await policies.get(params.id);
      return { body: p, headers: { ETag: `"${p.version}"` } };
    },
  }),
  route({
    method: 'put',
    path: '/policies/:id',
    summary: 'Replace a policy (send If-Match: "<version>" to guard against concurrent edits)',
    tag: 'policies',
    access: 'policies:write',
    params: idParam,
    body: policyDocumentSchema,
    responses: { 200: { description: 'Replaced; version incremented', schema: policySchema }, 412: { description: 'Version changed meanwhile', schema: problemSchema }, 422: { description: 'Invalid rules', schema: problemSchema } },
    handler: async (ctx) => {
      const p = await policies.replace(ctx.params.id, ctx.body, mustPrincipal(ctx), ctx.meta, ifMatch(ctx.req.header('if-match')));
      return { body: p, headers: { ETag: `"${p.version}"` } };
    },
  }),
  route({
    method: 'delete',
    path: '/policies/:id',
    summary: 'Delete a policy',
    tag: 'policies',
    access: 'policies:write',
    params: idParam,
    responses: { 204: { description: 'Deleted' }, 404: { description: 'No such policy', schema: problemSchema } },
    handler: async (ctx) => {
      await policies.delete(ctx.params.id, mustPrincipal(ctx), ctx.meta);
      return { status: 204 };
    },
  }),
];
