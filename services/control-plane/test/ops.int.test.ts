import { allRoutes } from '../src/app';
import { bearer, createHarness, type Harness } from './harness';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every `$ref` value anywhere in `node`. */
const refsIn = (node: Json, out: string[] = []): string[] => {
  if (Array.isArray(node)) for (const v of node) refsIn(v, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refsIn(v, out);
    }
  }
  return out;
};

/** Resolves a local JSON pointer (`#/a/b`) in `doc`. */
const resolvePointer = (doc: Json, ref: string): Json | undefined => {
  if (!ref.startsWith('#/')) return undefined;
  let node: Json | undefined = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = node && typeof node === 'object' && !Array.isArray(node) ? node[key] : undefined;
  }
  return node;
};

describe('operations and API surface', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ http: { bodyLimitBytes: 4096 } });
  });
  afterAll(() => h.close());

  describe('health', () => {
    it('GET /healthz → 200 ok, without authentication', async () => {
      const res = await h.request.get('/healthz');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ok' });
    });

    it('GET /readyz → 200 with its checks', async () => {
      const res = await h.request.get('/readyz');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ready', checks: { database: true, migrations: true } });
    });

    it('GET /readyz → 503 when the schema is behind', async () => {
      await h.db.query('ALTER TABLE schema_migrations RENAME TO schema_migrations_away');
      try {
        const res = await h.request.get('/readyz');
        expect(res.status).toBe(503);
        expect(res.body).toEqual({ status: 'not ready', checks: { database: true, migrations: false } });
      } finally {
        await h.db.query('ALTER TABLE schema_migrations_away RENAME TO schema_migrations');
      }
      expect((await h.request.get('/readyz')).status).toBe(200);
    });
  });

  describe('request ids and common headers', () => {
    it('echoes a well-formed X-Request-Id, also in problem documents', async () => {
      const ok = await h.request.get('/healthz').set('X-Request-Id', 'trace-123.abc:def_ghi-J');
      expect(ok.headers['x-request-id']).toBe('trace-123.abc:def_ghi-J');
      const problem = await h.request.get('/api/v1/nope').set('X-Request-Id', 'req-42');
      expect(problem.headers['x-request-id']).toBe('req-42');
      expect(problem.body.requestId).toBe('req-42');
    });

    it.each([
      ['absent', undefined],
      ['with spaces', 'has spaces'],
      ['with a newline-like character', 'a\tb'],
      ['too long', 'x'.repeat(101)],
      ['with markup', '<script>'],
    ])('generates one when it is %s', async (_what, incoming) => {
      const req = h.request.get('/healthz');
      const res = await (incoming === undefined ? req : req.set('X-Request-Id', incoming));
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(res.headers['x-request-id']).not.toBe(incoming);
    });

    it('sets no-store, nosniff and no X-Powered-By', async () => {
      const res = await h.request.get('/api/v1/auth/jwks');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-powered-by']).toBeUndefined();
      const me = await h.request.get('/api/v1/auth/me').set(bearer(await h.adminToken()));
      expect(me.headers['cache-control']).toBe('no-store');
    });
  });

  describe('problem documents', () => {
    it.each(['/api/v1/nope', '/api/v1/users/x/y/z', '/nope', '/api/v2/users'])('unknown route %s → 404 problem+json ROUTE_NOT_FOUND', async (path) => {
      const res = await h.request.get(path);
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.body).toEqual({
        type: 'https://port-authorizing.dev/errors/route-not-found',
        title: 'No such endpoint.',
        status: 404,
        detail: 'No such endpoint.',
        code: 'ROUTE_NOT_FOUND',
        instance: path,
        requestId: expect.any(String),
      });
    });

    it('an unknown method on a known path → 404 ROUTE_NOT_FOUND', async () => {
      const res = await h.request.put('/api/v1/settings').set(bearer(await h.adminToken())).send({});
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('ROUTE_NOT_FOUND');
    });

    it.each(['{"username": "admin",', "{'username': 'admin'}", '[1,2', 'null', '"a string"'])('malformed or non-object JSON %s → 400', async (raw) => {
      const res = await h.request.post('/api/v1/auth/login').set('Content-Type', 'application/json').send(raw);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.body.code).toBe('MALFORMED_JSON');
      expect(JSON.stringify(res.body)).not.toMatch(/SyntaxError|Unexpected token|at JSON/);
    });

    it('a body over the limit → 413 PAYLOAD_TOO_LARGE, checked before authentication', async () => {
      const big = JSON.stringify({ username: 'admin', password: 'x'.repeat(5000) });
      const res = await h.request.post('/api/v1/auth/login').set('Content-Type', 'application/json').send(big);
      expect(res.status).toBe(413);
      expect(res.body.code).toBe('PAYLOAD_TOO_LARGE');
      const authed = await h.request.post('/api/v1/users').set('Content-Type', 'application/json').send(big);
      expect(authed.status).toBe(413);
      // A body within the limit gets through the parser (and then fails on its merits).
      const small = await h.request.post('/api/v1/auth/login').send({ username: 'admin', password: 'x'.repeat(900) });
      expect(small.status).toBe(401);
    });

    it('a body that is not JSON on a JSON endpoint → 415 UNSUPPORTED_MEDIA_TYPE', async () => {
      const res = await h.request.post('/api/v1/auth/login').set('Content-Type', 'text/plain').send('username=admin');
      expect(res.status).toBe(415);
      expect(res.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    });

    it('an internal error is a generic 500 problem; its text stays in the log', async () => {
      const original = h.cp.settings.get.bind(h.cp.settings);
      h.cp.settings.get = async () => {
        throw new Error('secret internal detail 0xdeadbeef');
      };
      try {
        const res = await h.request.get('/api/v1/settings').set(bearer(await h.adminToken()));
        expect(res.status).toBe(500);
        expect(res.body.code).toBe('INTERNAL');
        expect(res.text).not.toContain('0xdeadbeef');
        expect(h.logs.some((l) => l.includes('0xdeadbeef') && l.includes('"level":"error"'))).toBe(true);
      } finally {
        h.cp.settings.get = original;
      }
    });
  });

  describe('OpenAPI document', () => {
    let doc: {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> }; responses: Record<string, unknown>; operationId: string; security?: unknown[]; 'x-permission'?: string }>>;
      components: { schemas: Record<string, unknown> };
    };
    beforeAll(async () => {
      const res = await h.request.get('/api/v1/openapi.json');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toContain('application/json');
      doc = res.body;
    });

    it('is OpenAPI 3.1', () => {
      expect(doc.openapi).toBe('3.1.0');
      expect(doc.info.title).toEqual(expect.any(String));
    });

    it('lists exactly the mounted routes, each with its request body schema and permission', () => {
      const routes = allRoutes(h.cp);
      const listed = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
      const mounted = routes.map((r) => `${r.method.toUpperCase()} /api/v1${r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
      expect(listed.sort()).toEqual([...mounted].sort());
      for (const r of routes) {
        const op = doc.paths[`/api/v1${r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`]?.[r.method];
        expect(op).toBeDefined();
        if (r.body) {
          const schema = op?.requestBody?.content['application/json']?.schema;
          expect(schema).toEqual(expect.objectContaining({ type: 'object' }));
          expect(Object.keys((schema as { properties?: object }).properties ?? {}).length).toBeGreaterThan(0);
        } else {
          expect(op?.requestBody).toBeUndefined();
        }
        if (r.access === 'public') expect(op?.security).toEqual([]);
        else if (r.access !== 'user') expect(op?.['x-permission']).toBe(r.access);
      }
      expect(new Set(Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((o) => o.operationId))).size).toBe(mounted.length);
    });

    it('describes request bodies with the validating schemas (e.g. users, connections)', () => {
      const user = doc.paths['/api/v1/users']?.post?.requestBody?.content['application/json']?.schema as { properties: Record<string, unknown>; required: string[]; additionalProperties: boolean };
      expect(Object.keys(user.properties).sort()).toEqual(['displayName', 'email', 'password', 'roles', 'username']);
      expect(user.required).toEqual(expect.arrayContaining(['username', 'password']));
      expect(user.additionalProperties).toBe(false);
      const conn = doc.paths['/api/v1/connections']?.post?.requestBody?.content['application/json']?.schema as { properties: Record<string, { minimum?: number; maximum?: number }> };
      expect(conn.properties.port).toMatchObject({ minimum: 1, maximum: 65535 });
    });

    it('has no dangling $ref', () => {
      const refs = refsIn(doc as unknown as Json);
      expect(refs.length).toBeGreaterThan(0);
      const dangling = [...new Set(refs)].filter((r) => resolvePointer(doc as unknown as Json, r) === undefined);
      expect(dangling).toEqual([]);
      expect(JSON.stringify(doc)).not.toContain('$defs');
      // Named schemas live under components, once each.
      expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Problem', 'User', 'Role', 'Connection', 'ReachableConnection', 'Policy', 'AuditEvent', 'SigningKey']));
      expect(doc.components.schemas.User).toMatchObject({ type: 'object', properties: { id: { type: 'string' }, username: { type: 'string' } } });
      const listUsers = doc.paths['/api/v1/users']?.get?.responses['200'] as { content: Record<string, { schema: Json }> };
      expect(refsIn(listUsers.content['application/json']?.schema ?? null)).toEqual(['#/components/schemas/User']);
    });
  });

  describe('API docs page', () => {
    it('redirects /api/v1/docs to /api/v1/docs/', async () => {
      const res = await h.request.get('/api/v1/docs');
      expect(res.status).toBe(301);
      expect(res.headers.location).toBe('/api/v1/docs/');
    });

    it('serves the HTML page, and every script and stylesheet it names loads', async () => {
      const page = await h.request.get('/api/v1/docs/');
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toContain('text/html');
      const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
      expect(assets).toEqual(expect.arrayContaining(['assets/swagger-ui.css', 'assets/swagger-ui-bundle.js', 'init.js']));
      expect(page.text).not.toMatch(/https?:\/\//);
      for (const asset of assets) {
        const res = await h.request.get(`/api/v1/docs/${asset}`);
        expect(res.status).toBe(200);
        expect(res.headers['content-type']).toMatch(asset.endsWith('.css') ? /text\/css/ : /javascript/);
        expect(Number(res.headers['content-length'] ?? res.text.length)).toBeGreaterThan(0);
      }
      const init = await h.request.get('/api/v1/docs/init.js');
      expect(init.text).toContain('../openapi.json');
    });

    it('does not list the package directory', async () => {
      const res = await h.request.get('/api/v1/docs/assets/');
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('ROUTE_NOT_FOUND');
    });
  });
});
