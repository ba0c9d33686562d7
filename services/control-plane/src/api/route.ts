import type { Request, Response, Router } from 'express';
import { type z } from 'zod';
import { AppError, zodProblems } from '@pa/kit';
import type { Permission, Principal, RequestMeta } from '../domain/permissions';

/** Who may call a route: anyone, any signed-in user, or holders of a permission. */
export type Access = 'public' | 'user' | Permission;

export interface HandlerContext<P, Q, B> {
  req: Request;
  res: Response;
  params: P;
  query: Q;
  body: B;
  /** The caller; null only on public routes. */
  principal: Principal | null;
  meta: RequestMeta;
  /**
   * For permission checks a handler makes itself (e.g. depending on a query
   * parameter): refuses with PERMISSION_DENIED, audited like the router's own
   * checks, unless the caller holds `permission`.
   */
  demand(permission: Permission, message?: string): Promise<void>;
}

/** A JSON reply; `undefined` means the handler wrote the response itself (streams). */
export type HandlerResult = { status?: number; body?: unknown; headers?: Record<string, string> } | undefined;

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  contentType?: string;
}

/**
 * One REST endpoint: its contract (schemas for params, query and body;
 * responses) and its handler. The router and the OpenAPI document are both
 * built from these, so the documentation cannot drift from the validation.
 */
export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Express-style path under /api/v1, e.g. `/users/:id`. */
  path: string;
  summary: string;
  tag: string;
  access: Access;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  responses: Record<number, ResponseSpec>;
  handler: (ctx: HandlerContext<P, Q, B>) => Promise<HandlerResult>;
}

/** Declares a route with inferred types. */
export const route = <P = Record<string, never>, Q = Record<string, never>, B = undefined>(spec: RouteSpec<P, Q, B>): RouteSpec<P, Q, B> => spec;

const parsePart = <T>(schema: z.ZodType<T> | undefined, value: unknown, part: string): T => {
  if (!schema) return undefined as T;
  const result = schema.safeParse(value);
  if (!result.success) throw new AppError('VALIDATION_FAILED', { details: zodProblems(result.error, part) });
  return result.data;
};

export interface RouteDeps {
  authenticate(req: Request): Promise<Principal>;
  requestMeta(req: Request): RequestMeta;
  onDenied(principal: Principal, permission: Permission, req: Request): Promise<void>;
}

/** Mounts `routes` on `router`, with authentication, permission checks and validation in front. */
export const mountRoutes = (router: Router, routes: readonly RouteSpec<never, never, never>[], deps: RouteDeps): void => {
  for (const spec of routes as unknown as RouteSpec[]) {
    router[spec.method](spec.path, async (req: Request, res: Response) => {
      let principal: Principal | null = null;
      const demand = async (permission: Permission, message?: string): Promise<void> => {
        if (principal?.permissions.has(permission)) return;
        if (principal) await deps.onDenied(principal, permission, req);
        throw new AppError('PERMISSION_DENIED', { message: message ?? `You need the ${permission} permission to do this.` });
      };
      if (spec.access !== 'public') {
        principal = await deps.authenticate(req);
        if (spec.access !== 'user') await demand(spec.access);
      }
      if (spec.body && req.body === undefined) {
        if (req.headers['content-type'] && !req.is('application/json')) throw new AppError('UNSUPPORTED_MEDIA_TYPE');
      }
      const ctx: HandlerContext<unknown, unknown, unknown> = {
        req,
        res,
        params: parsePart(spec.params, req.params, 'params'),
        query: parsePart(spec.query, req.query, 'query'),
        body: parsePart(spec.body, req.body ?? {}, 'body'),
        principal,
        meta: deps.requestMeta(req),
        demand,
      };
      const result = await spec.handler(ctx);
      if (!result) return;
      for (const [k, v] of Object.entries(result.headers ?? {})) res.setHeader(k, v);
      const status = result.status ?? 200;
      if (result.body === undefined) res.status(status).end();
      else res.status(status).json(result.body);
    });
  }
};

/** The caller of a non-public route. */
export const mustPrincipal = (ctx: { principal: Principal | null }): Principal => {
  if (!ctx.principal) throw new AppError('AUTH_REQUIRED');
  return ctx.principal;
};
