import { z } from 'zod';
import type { RouteSpec } from './route';
import { problemSchema } from './schemas';

const toJsonSchema = (schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> => {
  const s = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
  delete s.$schema;
  return s;
};

/** Express `/users/:id` → OpenAPI `/users/{id}`. */
const openApiPath = (path: string): string => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

const parameters = (schema: z.ZodType | undefined, where: 'path' | 'query'): unknown[] => {
  if (!schema) return [];
  const json = toJsonSchema(schema, 'input') as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || (json.required ?? []).includes(name),
    ...(typeof s.description === 'string' ? { description: s.description } : {}),
    schema: s,
  }));
};

/**
 * Builds the OpenAPI 3.1 document from the route specs: the same zod schemas
 * that validate requests describe them here.
 */
export const buildOpenApi = (routes: readonly RouteSpec<never, never, never>[], info: { version: string; serverUrl: string }) => {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes as unknown as RouteSpec[]) {
    const p = `/api/v1${openApiPath(r.path)}`;
    const responses: Record<string, unknown> = {};
    for (const [status, spec] of Object.entries(r.responses)) {
      responses[status] = {
        description: spec.description,
        ...(spec.schema ? { content: { [spec.contentType ?? (Number(status) >= 400 ? 'application/problem+json' : 'application/json')]: { schema: toJsonSchema(spec.schema, 'output') } } } : {}),
      };
    }
    if (r.access !== 'public') {
      responses['401'] ??= { description: 'Not signed in, or the token is invalid, expired or revoked', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
      if (r.access !== 'user') responses['403'] ??= { description: `Requires the ${r.access} permission`, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
    }
    if (r.body) responses['400'] ??= { description: 'Invalid request', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
    paths[p] ??= {};
    (paths[p] as Record<string, unknown>)[r.method] = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method}${r.path.replace(/[/:]+([a-z])/g, (_m, c: string) => c.toUpperCase()).replace(/[^A-Za-z0-9]/g, '')}`,
      ...(r.access === 'public' ? { security: [] } : {}),
      ...(r.access !== 'public' && r.access !== 'user' ? { 'x-permission': r.access } : {}),
      parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')],
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: toJsonSchema(r.body, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Port Authorizing control plane API',
      version: info.version,
      description: 'Users, roles, connections, policies, grants and the audit trail. Errors are RFC 9457 problem documents with a stable `code`.',
    },
    servers: [{ url: info.serverUrl }],
    security: [{ bearerAuth: [] }],
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: { Problem: toJsonSchema(problemSchema, 'output') },
    },
    paths,
  };
};
