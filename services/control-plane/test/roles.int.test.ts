import { PERMISSIONS } from '../src/domain/permissions';
import { bearer, createHarness, type Harness } from './harness';
import { allPages, auditRows, createRole, createUser, passwordFor } from './fixtures';

interface RoleBody {
  id: string;
  name: string;
  description: string;
  permissions: string[];
  builtIn: boolean;
  createdAt: string;
  updatedAt: string;
}

describe('roles', () => {
  let h: Harness;
  let admin: string;
  beforeAll(async () => {
    h = await createHarness();
    admin = await h.adminToken();
  });
  afterAll(() => h.close());

  const get = (key: string) => h.request.get(`/api/v1/roles/${key}`).set(bearer(admin));

  it('seeds the built-in roles: admin with every permission, user with none', async () => {
    const a = (await get('admin')).body as RoleBody;
    const u = (await get('user')).body as RoleBody;
    expect(a).toMatchObject({ name: 'admin', builtIn: true });
    expect(a.permissions).toEqual([...PERMISSIONS].sort());
    expect(u).toMatchObject({ name: 'user', builtIn: true, permissions: [] });
  });

  it('lists every permission a role can carry', async () => {
    const res = await h.request.get('/api/v1/roles/permissions').set(bearer(admin));
    expect(res.status).toBe(200);
    expect(res.body.permissions).toEqual([...PERMISSIONS]);
  });

  describe('create, read, update, delete', () => {
    let role: RoleBody;

    it('creates a role (permissions de-duplicated and sorted) and audits it', async () => {
      const res = await h.request
        .post('/api/v1/roles')
        .set(bearer(admin))
        .send({ name: 'auditor', description: 'Reads the trail.', permissions: ['audit:read', 'users:read', 'audit:read'] });
      expect(res.status).toBe(201);
      role = res.body;
      expect(role).toEqual({
        id: expect.stringMatching(/^rol_[0-9a-z]{26}$/),
        name: 'auditor',
        description: 'Reads the trail.',
        permissions: ['audit:read', 'users:read'],
        builtIn: false,
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      const [event] = (await auditRows(h, 'role.create')).filter((e) => e.target_id === role.id);
      expect(event).toMatchObject({ outcome: 'success', actor_name: 'admin', details: { after: { name: 'auditor' } } });
    });

    it('gets it by id and by name (any case); 404 ROLE_NOT_FOUND otherwise', async () => {
      for (const key of [role.id, 'auditor', 'AUDITOR']) expect((await get(key)).body).toEqual(role);
      const missing = await get('no-such-role');
      expect(missing.status).toBe(404);
      expect(missing.body.code).toBe('ROLE_NOT_FOUND');
    });

    it('lists roles across pages with the cursor', async () => {
      for (let i = 0; i < 4; i += 1) await createRole(h, `paged-${i}`, []);
      const { items } = await allPages<RoleBody>(h, admin, '/api/v1/roles', 2);
      const names = items.map((r) => r.name);
      expect(new Set(names).size).toBe(names.length);
      expect(names).toEqual(expect.arrayContaining(['admin', 'user', 'auditor', 'paged-0', 'paged-1', 'paged-2', 'paged-3']));
      const { rows } = await h.db.query<{ n: string }>('SELECT count(*) AS n FROM roles');
      expect(names).toHaveLength(Number(rows[0]?.n));
    });

    it('updates name, description and permissions; audits before and after', async () => {
      const res = await h.request.patch(`/api/v1/roles/${role.id}`).set(bearer(admin)).send({ name: 'auditors', description: 'Changed.', permissions: ['audit:read'] });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: role.id, name: 'auditors', description: 'Changed.', permissions: ['audit:read'], builtIn: false });
      const partial = await h.request.patch('/api/v1/roles/auditors').set(bearer(admin)).send({ description: 'Only this.' });
      expect(partial.body).toMatchObject({ name: 'auditors', description: 'Only this.', permissions: ['audit:read'] });
      const event = (await auditRows(h, 'role.update')).filter((e) => e.target_id === role.id)[0];
      expect(event?.details).toMatchObject({ before: { name: 'auditor', permissions: ['audit:read', 'users:read'] }, after: { name: 'auditors', permissions: ['audit:read'] } });
    });

    it('refuses a name in use (any case) with 409, on create and on rename', async () => {
      const dup = await h.request.post('/api/v1/roles').set(bearer(admin)).send({ name: 'AUDITORS', permissions: [] });
      expect(dup.status).toBe(409);
      expect(dup.body.code).toBe('CONFLICT');
      const rename = await h.request.patch('/api/v1/roles/paged-0').set(bearer(admin)).send({ name: 'Auditors' });
      expect(rename.status).toBe(409);
      expect(rename.body.code).toBe('CONFLICT');
    });

    it('deletes it (audited); afterwards it is 404', async () => {
      const res = await h.request.delete(`/api/v1/roles/${role.id}`).set(bearer(admin));
      expect(res.status).toBe(204);
      expect((await get(role.id)).status).toBe(404);
      expect((await h.request.delete(`/api/v1/roles/${role.id}`).set(bearer(admin))).status).toBe(404);
      expect((await auditRows(h, 'role.delete')).some((e) => e.target_id === role.id)).toBe(true);
    });

    it('answers 404 when updating an unknown role', async () => {
      const res = await h.request.patch('/api/v1/roles/no-such-role').set(bearer(admin)).send({ description: 'x' });
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('ROLE_NOT_FOUND');
    });
  });

  it.each<[string, Record<string, unknown>, string[]]>([
    ['an unknown permission', { name: 'r1', permissions: ['users:read', 'users:destroy'] }, ['body.permissions.1']],
    ['a permission of the wrong type', { name: 'r2', permissions: [7] }, ['body.permissions.0']],
    ['missing permissions', { name: 'r3' }, ['body.permissions']],
    ['a bad name', { name: 'has space', permissions: [] }, ['body.name']],
    ['an unknown field', { name: 'r4', permissions: [], builtIn: true }, ['body']],
  ])('refuses %s with 400 and the field path', async (_what, body, paths) => {
    const res = await h.request.post('/api/v1/roles').set(bearer(admin)).send(body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(paths);
    expect((await h.db.query("SELECT 1 FROM roles WHERE name ~ '^r[0-9]$'")).rows).toHaveLength(0);
  });

  it('refuses an unknown permission on update too', async () => {
    await createRole(h, 'patchable', ['audit:read']);
    const res = await h.request.patch('/api/v1/roles/patchable').set(bearer(admin)).send({ permissions: ['root'] });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['body.permissions.0']);
  });

  describe('built-in roles', () => {
    it.each(['admin', 'user'])('%s cannot be deleted (409 ROLE_BUILT_IN)', async (name) => {
      const res = await h.request.delete(`/api/v1/roles/${name}`).set(bearer(admin));
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('ROLE_BUILT_IN');
      expect((await get(name)).status).toBe(200);
    });

    it.each(['admin', 'user'])('%s cannot be renamed (409 ROLE_BUILT_IN)', async (name) => {
      const res = await h.request.patch(`/api/v1/roles/${name}`).set(bearer(admin)).send({ name: `${name}-renamed` });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('ROLE_BUILT_IN');
      expect((await get(name)).body.name).toBe(name);
    });

    it.each<[string, string[]]>([
      ['fewer permissions', PERMISSIONS.filter((p) => p !== 'audit:read')],
      ['none', []],
      ['as many entries as there are permissions, but repeated', PERMISSIONS.map(() => 'users:read')],
    ])('the all-permissions role keeps every permission: %s is refused', async (_what, permissions) => {
      // Another full manager exists, so this is about the built-in rule, not LAST_ADMIN.
      if (!(await h.db.query("SELECT 1 FROM users WHERE username = 'second-admin'")).rows.length) {
        await createRole(h, 'full-manager', ['users:write', 'roles:write']);
        await createUser(h, 'second-admin', ['full-manager']);
      }
      const res = await h.request.patch('/api/v1/roles/admin').set(bearer(admin)).send({ permissions });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('ROLE_BUILT_IN');
      expect((await get('admin')).body.permissions).toEqual([...PERMISSIONS].sort());
    });

    it('a built-in role may change its description, and the one without every permission its permissions', async () => {
      const d = await h.request.patch('/api/v1/roles/admin').set(bearer(admin)).send({ description: 'Everything.', permissions: [...PERMISSIONS] });
      expect(d.status).toBe(200);
      expect(d.body).toMatchObject({ description: 'Everything.', builtIn: true });
      const u = await h.request.patch('/api/v1/roles/user').set(bearer(admin)).send({ permissions: ['connections:read'] });
      expect(u.status).toBe(200);
      expect(u.body.permissions).toEqual(['connections:read']);
      await h.request.patch('/api/v1/roles/user').set(bearer(admin)).send({ permissions: [] });
    });
  });

  it('deleting a bound role removes its bindings and the permissions it gave', async () => {
    await createRole(h, 'temp-readers', ['users:read']);
    const u = await createUser(h, 'temp-holder', ['temp-readers', 'user']);
    const { token } = await h.login('temp-holder', passwordFor('temp-holder'));
    expect((await h.request.get('/api/v1/users').set(bearer(token))).status).toBe(200);
    expect((await h.request.delete('/api/v1/roles/temp-readers').set(bearer(admin))).status).toBe(204);
    expect((await h.request.get(`/api/v1/users/${u.id}`).set(bearer(admin))).body.roles).toEqual(['user']);
    const { rows } = await h.db.query('SELECT 1 FROM role_bindings b JOIN users u ON u.id = b.user_id WHERE u.id = $1', [u.id]);
    expect(rows).toHaveLength(1);
    expect((await h.request.get('/api/v1/users').set(bearer(token))).status).toBe(403);
  });

  it('refuses a role change that would leave nobody able to manage users and roles (409 LAST_ADMIN)', async () => {
    await createRole(h, 'co-admin', ['users:write', 'roles:write', 'users:read', 'roles:read']);
    await createUser(h, 'deputy', ['co-admin']);
    await h.request.patch('/api/v1/users/second-admin').set(bearer(admin)).send({ disabled: true });
    const deputy = (await h.login('deputy', passwordFor('deputy'))).token;
    expect((await h.request.patch('/api/v1/users/admin').set(bearer(deputy)).send({ disabled: true })).status).toBe(200);
    try {
      const strip = await h.request.patch('/api/v1/roles/co-admin').set(bearer(deputy)).send({ permissions: ['users:write'] });
      expect(strip.status).toBe(409);
      expect(strip.body.code).toBe('LAST_ADMIN');
      const del = await h.request.delete('/api/v1/roles/co-admin').set(bearer(deputy));
      expect(del.status).toBe(409);
      expect(del.body.code).toBe('LAST_ADMIN');
      expect((await h.request.get('/api/v1/roles/co-admin').set(bearer(deputy))).body.permissions).toEqual(['roles:read', 'roles:write', 'users:read', 'users:write']);
    } finally {
      expect((await h.request.patch('/api/v1/users/admin').set(bearer(deputy)).send({ disabled: false })).status).toBe(200);
    }
  });
});
