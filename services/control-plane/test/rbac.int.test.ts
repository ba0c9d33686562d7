import type { Test } from 'supertest';
import { bearer, createHarness, type Harness } from './harness';
import { auditRowsAddedBy, createConnection, createPolicy, createRole, createUser, passwordFor } from './fixtures';

/**
 * Authorisation, table-driven: caller (by role) × admin endpoint × expected
 * status. `plain` has the built-in `user` role (no permissions), `reader` a
 * custom role holding only connections:read, `admin` the built-in admin role.
 */
type Caller = 'plain' | 'reader' | 'admin';

interface Endpoint {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  path: string;
  /** The permission the API documents for it. */
  permission: string;
  body?: Record<string, unknown>;
  expect: Record<Caller, number>;
}

const policyDoc = (name: string) => ({ name, roles: ['user'], selector: { tags: { env: 'rbac' } }, rules: [{ effect: 'allow', type: 'all' }] });
const connectionDoc = (name: string) => ({ name, protocol: 'postgres', host: 'db.internal', port: 5432, database: 'app', tags: { env: 'rbac' } });

const ONLY_ADMIN = (status: number): Record<Caller, number> => ({ plain: 403, reader: 403, admin: status });

const ENDPOINTS: Endpoint[] = [
  { method: 'get', path: '/users', permission: 'users:read', expect: ONLY_ADMIN(200) },
  { method: 'post', path: '/users', permission: 'users:write', body: { username: 'rbac-new-user', password: 'rbac-new-user-pw' }, expect: ONLY_ADMIN(201) },
  { method: 'get', path: '/users/rbac-target', permission: 'users:read', expect: ONLY_ADMIN(200) },
  { method: 'patch', path: '/users/rbac-target', permission: 'users:write', body: { displayName: 'Target' }, expect: ONLY_ADMIN(200) },
  { method: 'post', path: '/users/rbac-target/password', permission: 'users:write', body: { password: 'rbac-target-new-pw' }, expect: ONLY_ADMIN(204) },
  { method: 'delete', path: '/users/rbac-del-user', permission: 'users:write', expect: ONLY_ADMIN(204) },
  { method: 'get', path: '/roles', permission: 'roles:read', expect: ONLY_ADMIN(200) },
  { method: 'get', path: '/roles/permissions', permission: 'roles:read', expect: ONLY_ADMIN(200) },
  { method: 'get', path: '/roles/rbac-role', permission: 'roles:read', expect: ONLY_ADMIN(200) },
  { method: 'post', path: '/roles', permission: 'roles:write', body: { name: 'rbac-new-role', permissions: ['audit:read'] }, expect: ONLY_ADMIN(201) },
  { method: 'patch', path: '/roles/rbac-role', permission: 'roles:write', body: { description: 'changed' }, expect: ONLY_ADMIN(200) },
  { method: 'delete', path: '/roles/rbac-del-role', permission: 'roles:write', expect: ONLY_ADMIN(204) },
  { method: 'get', path: '/connections', permission: '(signed in)', expect: { plain: 200, reader: 200, admin: 200 } },
  { method: 'get', path: '/connections?scope=all', permission: 'connections:read', expect: { plain: 403, reader: 200, admin: 200 } },
  { method: 'get', path: '/connections/rbac-conn', permission: 'connections:read', expect: { plain: 403, reader: 200, admin: 200 } },
  { method: 'post', path: '/connections', permission: 'connections:write', body: connectionDoc('rbac-new-conn'), expect: ONLY_ADMIN(201) },
  { method: 'patch', path: '/connections/rbac-conn', permission: 'connections:write', body: { description: 'changed' }, expect: ONLY_ADMIN(200) },
  { method: 'delete', path: '/connections/rbac-del-conn', permission: 'connections:write', expect: ONLY_ADMIN(204) },
  { method: 'get', path: '/policies', permission: 'policies:read', expect: ONLY_ADMIN(200) },
  { method: 'get', path: '/policies/rbac-pol', permission: 'policies:read', expect: ONLY_ADMIN(200) },
  { method: 'post', path: '/policies/validate', permission: 'policies:read', body: policyDoc('rbac-dry-run'), expect: ONLY_ADMIN(200) },
  { method: 'post', path: '/policies', permission: 'policies:write', body: policyDoc('rbac-new-pol'), expect: ONLY_ADMIN(201) },
  { method: 'put', path: '/policies/rbac-pol', permission: 'policies:write', body: policyDoc('rbac-pol'), expect: ONLY_ADMIN(200) },
  { method: 'delete', path: '/policies/rbac-del-pol', permission: 'policies:write', expect: ONLY_ADMIN(204) },
  { method: 'get', path: '/audit/events', permission: 'audit:read', expect: ONLY_ADMIN(200) },
  { method: 'get', path: '/audit/export', permission: 'audit:read', expect: ONLY_ADMIN(200) },
  { method: 'get', path: '/settings', permission: 'settings:read', expect: ONLY_ADMIN(200) },
  { method: 'patch', path: '/settings', permission: 'settings:write', body: { registration: { enabled: false } }, expect: ONLY_ADMIN(200) },
  { method: 'get', path: '/keys', permission: 'keys:read', expect: ONLY_ADMIN(200) },
  { method: 'post', path: '/keys/rotate', permission: 'keys:rotate', body: { use: 'access' }, expect: ONLY_ADMIN(200) },
];

const CALLERS: Caller[] = ['plain', 'reader', 'admin'];
// Callers in order, so the admin's writes (deletes) run after everyone else has been refused.
const CASES = CALLERS.flatMap((caller) => ENDPOINTS.map((e) => [caller, e.method.toUpperCase(), e.path, e.expect[caller], e] as const));

describe('authorisation', () => {
  let h: Harness;
  const tokens = {} as Record<Caller, string>;
  const ids = { plain: '', reader: '' };

  beforeAll(async () => {
    h = await createHarness();
    await createRole(h, 'conn-reader', ['connections:read']);
    await createRole(h, 'rbac-role', ['audit:read']);
    await createRole(h, 'rbac-del-role', ['audit:read']);
    ids.plain = (await createUser(h, 'plain', ['user'])).id;
    ids.reader = (await createUser(h, 'reader', ['conn-reader'])).id;
    await createUser(h, 'rbac-target', ['user']);
    await createUser(h, 'rbac-del-user', ['user']);
    await createConnection(h, connectionDoc('rbac-conn'));
    await createConnection(h, connectionDoc('rbac-del-conn'));
    await createPolicy(h, policyDoc('rbac-pol'));
    await createPolicy(h, policyDoc('rbac-del-pol'));
    tokens.plain = (await h.login('plain', passwordFor('plain'))).token;
    tokens.reader = (await h.login('reader', passwordFor('reader'))).token;
    tokens.admin = await h.adminToken();
  });
  afterAll(() => h.close());

  const call = (e: Endpoint, token?: string): Test => {
    let t = h.request[e.method](`/api/v1${e.path}`);
    if (token) t = t.set(bearer(token));
    return e.body ? t.send(e.body) : t;
  };

  it('gives each caller the permissions of their roles', async () => {
    const perms = async (c: Caller) => (await h.request.get('/api/v1/auth/me').set(bearer(tokens[c]))).body.permissions;
    expect(await perms('plain')).toEqual([]);
    expect(await perms('reader')).toEqual(['connections:read']);
    expect((await perms('admin')).length).toBe(15);
  });

  it.each(CASES)('%s: %s %s → %i', async (caller, _method, _path, status, e) => {
    const { result: res, rows: denied } = await auditRowsAddedBy(h, 'authz.denied', () => call(e, tokens[caller]));
    expect(res.status).toBe(status);
    if (status === 403) {
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.body.code).toBe('PERMISSION_DENIED');
      expect(res.body.detail).toContain(e.permission);
      expect(denied).toHaveLength(1);
      expect(denied[0]).toMatchObject({
        outcome: 'denied',
        actor_id: ids[caller as 'plain' | 'reader'],
        actor_name: caller,
        details: { permission: e.permission, method: e.method.toUpperCase(), path: e.path.split('?')[0] },
      });
    } else {
      expect(denied).toHaveLength(0);
    }
  });

  it('refuses before validating the body: a denied caller learns nothing about the input', async () => {
    const res = await h.request.post('/api/v1/users').set(bearer(tokens.plain)).send({ username: 1 });
    expect(res.status).toBe(403);
    expect(res.body.errors).toBeUndefined();
  });

  it('refuses before looking the resource up: 403, not 404, for a missing id', async () => {
    const res = await h.request.get('/api/v1/users/no-such-user').set(bearer(tokens.reader));
    expect(res.status).toBe(403);
  });

  it.each(ENDPOINTS.map((e) => [e.method.toUpperCase(), e.path, e] as const))('without a token: %s %s → 401 AUTH_REQUIRED', async (_m, _p, e) => {
    const res = await call(e);
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('AUTH_REQUIRED');
    expect(res.headers['www-authenticate']).toContain('Bearer');
  });

  it('applies a role change to the very next request', async () => {
    expect((await h.request.get('/api/v1/audit/events').set(bearer(tokens.reader))).status).toBe(403);
    await h.request.patch('/api/v1/roles/conn-reader').set(bearer(tokens.admin)).send({ permissions: ['connections:read', 'audit:read'] });
    expect((await h.request.get('/api/v1/audit/events').set(bearer(tokens.reader))).status).toBe(200);
    await h.request.patch('/api/v1/users/reader').set(bearer(tokens.admin)).send({ roles: ['user'] });
    expect((await h.request.get('/api/v1/connections?scope=all').set(bearer(tokens.reader))).status).toBe(403);
  });
});
