import { randomUUID } from 'node:crypto';
import express, { type Express, type Request } from 'express';
import { AppError } from '@pa/kit';
import { auditRoutes } from './api/audit/routes';
import { authRoutes } from './api/auth/routes';
import { connectionRoutes } from './api/connections/routes';
import { docsRouter } from './api/docs';
import { grantRoutes, infoRoutes } from './api/grants/routes';
import { keyRoutes } from './api/keys/routes';
import { buildOpenApi } from './api/openapi';
import { policyRoutes } from './api/policies/routes';
import { notFound, problemHandler } from './api/problem';
import { roleRoutes } from './api/roles/routes';
import { mountRoutes, type RouteSpec } from './api/route';
import { settingsRoutes } from './api/settings/routes';
import { userRoutes } from './api/users/routes';
import { isSchemaCurrent } from './db/migrate';
import type { Permission, RequestMeta } from './domain/permissions';
import type { ControlPlane } from './services';

export const API_VERSION = '0.1.0';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/** Every REST route of the control plane, in one list (the router and OpenAPI both read it). */
export const allRoutes = (cp: ControlPlane): RouteSpec<never, never, never>[] =>
  [
    ...authRoutes(cp.auth, cp.users, cp.accessKeys),
    ...userRoutes(cp.users),
    ...roleRoutes(cp.roles),
    ...connectionRoutes(cp.connections, cp.grants),
    ...policyRoutes(cp.policies, cp.explainer),
    ...auditRoutes(cp.auditQuery),
    ...settingsRoutes(cp.settings),
    ...keyRoutes({ access: cp.accessKeys, grant: cp.grantKeys, 'node-encryption': cp.nodeKeys }, cp.audit, () => cp.onKeysRotated()),
    ...grantRoutes(cp.grants, cp.nodes),
    ...infoRoutes(() => ({ version: API_VERSION, grpc: { url: cp.grpcAddress, tls: cp.config.grpc.publicTls ?? Boolean(cp.config.grpc.tls.certFile) } })),
  ] as unknown as RouteSpec<never, never, never>[];

const bearer = (req: Request): string => {
  const header = req.header('authorization');
  if (!header) throw new AppError('AUTH_REQUIRED');
  const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim());
  if (!m) throw new AppError('AUTH_TOKEN_INVALID', { message: 'Expected "Authorization: Bearer <token>".' });
  return m[1] as string;
};

/** Builds the Express app from its dependencies (no listening here: see main.ts). */
export const createApp = (cp: ControlPlane): Express => {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', cp.config.http.trustProxy);
  app.set('json spaces', 0);

  app.use((req, res, next) => {
    const incoming = req.header('x-request-id');
    res.setHeader('X-Request-Id', incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID());
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      cp.logger.debug('Request served.', {
        requestId: res.getHeader('x-request-id'),
        method: req.method,
        path: req.path,
        status: res.statusCode,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
      });
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const database = await cp.db.ping();
    const migrations = database && (await isSchemaCurrent((sql) => cp.db.query(sql)));
    res.status(database && migrations ? 200 : 503).json({ status: database && migrations ? 'ready' : 'not ready', checks: { database, migrations } });
  });

  const routes = allRoutes(cp);
  const requestMeta = (req: Request): RequestMeta => ({
    requestId: String(req.res?.getHeader('x-request-id') ?? ''),
    sourceIp: req.ip ?? req.socket.remoteAddress ?? 'unknown',
    userAgent: (req.header('user-agent') ?? '').slice(0, 300),
  });
  const api = express.Router();
  api.use(express.json({ limit: cp.config.http.bodyLimitBytes, strict: true }));
  const openapi = buildOpenApi(routes, { version: API_VERSION, serverUrl: cp.config.http.publicUrl ?? '/' });
  api.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  api.get('/docs', (req, res, next) => (req.originalUrl.endsWith('/') ? next() : res.redirect(301, `${req.originalUrl}/`)));
  api.use('/docs', docsRouter());
  mountRoutes(api, routes, {
    authenticate: (req) => cp.auth.authenticate(bearer(req)),
    requestMeta,
    onDenied: async (principal, permission: Permission, req) => {
      await cp.audit.recordSafely({
        action: 'authz.denied',
        outcome: 'denied',
        actor: { id: principal.userId, name: principal.username },
        request: requestMeta(req),
        details: { permission, method: req.method, path: req.path },
      });
    },
  });
  api.use(notFound);
  app.use('/api/v1', api);
  app.use(notFound);
  app.use(problemHandler(cp.logger));
  return app;
};
