import { z } from 'zod';
import type { RouteSpec } from './route';
import { problemSchema } from './schemas';

type SchemaConverter = (schema: z.ZodType, io: 'input' | 'output') => Record<string, unknown>;

/** Replaces every `$ref` in `node` (deeply) by `map(ref)`. */
const rewriteRefs = (node: unknown, map: (ref: string) => string): unknown => {
  if (Array.isArray(node)) return node.map((v) => rewriteRefs(v, map));
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' ? map(v) : rewriteRefs(v, map)]));
};

/**
 * A zod → JSON Schema converter for one OpenAPI document. zod puts schemas
 * with an id (`.meta({ id })`) in a `$defs` of each converted schema and refers
 * to them as `#/$defs/<id>`; inside an OpenAPI document that pointer resolves
 * against the document root, where there is no `$defs`. So the definitions are
 * hoisted into `components` (the input form of a schema gets an `Input` suffix
 * when it differs from the output form) and the references rewritten.
 */
const schemaConverter = (components: Record<string, unknown>): SchemaConverter => (schema, io) => {
  const s = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
  delete s.$schema;
  const defs = (s.$defs ?? {}) as Record<string, unknown>;
  delete s.$defs;
  // Each id keeps its name unless a different schema already holds it (then
  // `<id>Input`, `<id>Input2`, …). Renaming one definition changes those that
  // refer to it, so repeat until stable.
  const suffix = io === 'input' ? 'Input' : 'Output';
  const attempt = new Map(Object.keys(defs).map((id) => [id, 0]));
  const nameOf = (id: string): string => {
    const k = attempt.get(id) ?? 0;
    return k === 0 ? id : `${id}${suffix}${k === 1 ? '' : k}`;
  };
  const map = (ref: string): string => {
    const m = /^#\/\$defs\/(.+)$/.exec(ref);
    return m ? `#/components/schemas/${nameOf(m[1] as string)}` : ref;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const [id, def] of Object.entries(defs)) {
      const held = components[nameOf(id)];
      if (held !== undefined && JSON.stringify(held) !== JSON.stringify(rewriteRefs(def, map))) {
        attempt.set(id, (attempt.get(id) ?? 0) + 1);
        changed = true;
      }
    }
  }
  for (const [id, def] of Object.entries(defs)) components[nameOf(id)] = rewriteRefs(def, map);
  return rewriteRefs(s, map) as Record<string, unknown>;
};

/** Express `/users/:id` → OpenAPI `/users/{id}`. */
const openApiPath = (path: string): string => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

const parameters = (toJsonSchema: SchemaConverter, schema: z.ZodType | undefined, where: 'path' | 'query'): unknown[] => {
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
  const schemas: Record<string, unknown> = {};
  const toJsonSchema = schemaConverter(schemas);
  // Registers the Problem schema (it has an id) under components.
  toJsonSchema(problemSchema, 'output');
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
      parameters: [...parameters(toJsonSchema, r.params, 'path'), ...parameters(toJsonSchema, r.query, 'query')],
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
      schemas,
    },
    paths,
  };
};
