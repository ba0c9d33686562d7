import { ADMIN_PASSWORD, bearer, createHarness, type Harness } from './harness';
import { allPages, auditRows, createRole, createUser, passwordFor, userWithToken } from './fixtures';

interface UserBody {
  id: string;
  username: string;
  email: string | null;
  displayName: string;
  disabled: boolean;
  roles: string[];
  createdAt: string;
  updatedAt: string;
}

describe('users', () => {
  let h: Harness;
  let admin: string;
  beforeAll(async () => {
    h = await createHarness();
    admin = await h.adminToken();
  });
  afterAll(() => h.close());

  const me = (token: string) => h.request.get('/api/v1/auth/me').set(bearer(token));

  describe('create', () => {
    it('creates a user with roles, returns it without any password material, and audits it', async () => {
      const res = await h.request
        .post('/api/v1/users')
        .set(bearer(admin))
        .send({ username: 'alice', password: 'alice-password-1', email: 'Alice@Example.COM', displayName: 'Alice A.', roles: ['user'] });
      expect(res.status).toBe(201);
      const u = res.body as UserBody;
      expect(u).toEqual({
        id: expect.stringMatching(/^usr_[0-9a-z]{26}$/),
        username: 'alice',
        email: 'alice@example.com',
        displayName: 'Alice A.',
        disabled: false,
        roles: ['user'],
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      expect(JSON.stringify(res.body)).not.toMatch(/password|hash|\$2[aby]\$/i);
      const [event] = (await auditRows(h, 'user.create')).filter((e) => e.target_id === u.id);
      expect(event).toMatchObject({ outcome: 'success', actor_name: 'admin', target_type: 'user' });
      expect(JSON.stringify(event)).not.toContain('alice-password-1');
      // The stored hash is bcrypt, not the password.
      const { rows } = await h.db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [u.id]);
      expect(rows[0]?.password_hash).toMatch(/^\$2[aby]\$04\$/);
    });

    it('defaults email to null, display name to empty and roles to none', async () => {
      const u = await createUser(h, 'bare-user');
      expect(u).toMatchObject({ email: null, displayName: '', roles: [], disabled: false });
    });

    it.each([
      ['the same username', 'alice', 'other@example.com'],
      ['the username in other case', 'ALICE', 'other2@example.com'],
      ['an email in use (any case)', 'alice2', 'ALICE@example.com'],
    ])('refuses %s with 409 CONFLICT', async (_what, username, email) => {
      const res = await h.request.post('/api/v1/users').set(bearer(admin)).send({ username, password: 'some-password-1', email });
      expect(res.status).toBe(409);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.body.code).toBe('CONFLICT');
    });

    it.each<[string, Record<string, unknown>, string[]]>([
      ['missing fields', {}, ['body.password', 'body.username']],
      ['a short password', { username: 'shorty', password: 'short' }, ['body.password']],
      ['a bad username and email', { username: 'a b', password: 'long-enough-pass', email: 'nope' }, ['body.email', 'body.username']],
      ['a username too short', { username: 'ab', password: 'long-enough-pass' }, ['body.username']],
      ['an unknown field', { username: 'extra', password: 'long-enough-pass', admin: true }, ['body']],
      ['roles that are not names', { username: 'rolesy', password: 'long-enough-pass', roles: ['has space', 3] }, ['body.roles.0', 'body.roles.1']],
    ])('refuses %s with 400 problem+json naming each field', async (_what, body, paths) => {
      const res = await h.request.post('/api/v1/users').set(bearer(admin)).send(body);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(paths);
      for (const e of res.body.errors) expect(e.message).toEqual(expect.any(String));
    });

    it('refuses an unknown role by its index and creates nothing', async () => {
      const res = await h.request.post('/api/v1/users').set(bearer(admin)).send({ username: 'ghost-roles', password: 'long-enough-pass', roles: ['user', 'no-such-role'] });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect(res.body.errors).toEqual([{ path: 'roles.1', message: expect.stringContaining('no-such-role') }]);
      expect((await h.request.get('/api/v1/users/ghost-roles').set(bearer(admin))).status).toBe(404);
    });
  });

  describe('list and get', () => {
    let created: UserBody[];
    beforeAll(async () => {
      created = [];
      for (let i = 0; i < 7; i += 1) created.push(await createUser(h, `pager-${i}`, [], { email: `pager-${i}@example.com` }));
    });

    it('walks every user across pages with the cursor: ordered by id, no duplicates, no gaps', async () => {
      const { items, pages } = await allPages<UserBody>(h, admin, '/api/v1/users', 3);
      const ids = items.map((u) => u.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect([...ids].sort()).toEqual(ids);
      const { rows } = await h.db.query<{ id: string }>('SELECT id FROM users ORDER BY id');
      expect(ids).toEqual(rows.map((r) => r.id));
      expect(pages).toBe(Math.ceil(rows.length / 3));
      for (const u of created) expect(items.find((i) => i.id === u.id)).toEqual(u);
    });

    it('ends with nextCursor null and filters with q (username or email, case-insensitive)', async () => {
      const all = await h.request.get('/api/v1/users?limit=500').set(bearer(admin));
      expect(all.body.nextCursor).toBeNull();
      const q = await h.request.get('/api/v1/users?q=PAGER-').set(bearer(admin));
      expect(q.body.items.map((u: UserBody) => u.username)).toEqual(created.map((u) => u.username));
      const byEmail = await h.request.get('/api/v1/users?q=pager-3@').set(bearer(admin));
      expect(byEmail.body.items.map((u: UserBody) => u.username)).toEqual(['pager-3']);
      // LIKE metacharacters are literal.
      expect((await h.request.get('/api/v1/users?q=%25').set(bearer(admin))).body.items).toEqual([]);
    });

    it.each([
      ['limit=0', 'query.limit'],
      ['limit=501', 'query.limit'],
      ['limit=abc', 'query.limit'],
      ['cursor=not-a-cursor', 'cursor'],
    ])('refuses %s with 400', async (qs, path) => {
      const res = await h.request.get(`/api/v1/users?${qs}`).set(bearer(admin));
      expect(res.status).toBe(400);
      expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual([path]);
    });

    it('gets a user by id and by username (any case)', async () => {
      const u = created[2] as UserBody;
      for (const key of [u.id, u.username, u.username.toUpperCase()]) {
        const res = await h.request.get(`/api/v1/users/${key}`).set(bearer(admin));
        expect(res.status).toBe(200);
        expect(res.body).toEqual(u);
      }
    });

    it('answers 404 USER_NOT_FOUND for an unknown id or name', async () => {
      for (const key of ['usr_00000000000000000000000000', 'nobody']) {
        const res = await h.request.get(`/api/v1/users/${key}`).set(bearer(admin));
        expect(res.status).toBe(404);
        expect(res.body.code).toBe('USER_NOT_FOUND');
      }
    });

    it("resolves an id to its own user even when someone's username equals that id", async () => {
      const victim = await createUser(h, 'victim-by-id');
      const squatter = await createUser(h, victim.id);
      expect(squatter.username).toBe(victim.id);
      for (let i = 0; i < 5; i += 1) {
        const res = await h.request.get(`/api/v1/users/${victim.id}`).set(bearer(admin));
        expect(res.body.id).toBe(victim.id);
      }
      // A write by id touches the user with that id, not the squatter.
      const patched = await h.request.patch(`/api/v1/users/${victim.id}`).set(bearer(admin)).send({ displayName: 'the real one' });
      expect(patched.body.id).toBe(victim.id);
      expect((await h.request.get(`/api/v1/users/${squatter.id}`).set(bearer(admin))).body.displayName).toBe('');
      expect((await h.request.delete(`/api/v1/users/${victim.id}`).set(bearer(admin))).status).toBe(204);
      expect((await h.request.get(`/api/v1/users/${squatter.id}`).set(bearer(admin))).status).toBe(200);
    });
  });

  describe('update', () => {
    let bob: UserBody;
    let viewer: { id: string };
    beforeAll(async () => {
      bob = await createUser(h, 'bob', ['user'], { email: 'bob@example.com' });
      viewer = await createRole(h, 'viewer', ['users:read']);
      await createUser(h, 'dora', [], { email: 'dora@example.com' });
    });

    it('changes email, display name and roles; audits before and after', async () => {
      const res = await h.request.patch(`/api/v1/users/${bob.id}`).set(bearer(admin)).send({ email: 'Bob.New@Example.com', displayName: 'Bob B.', roles: ['viewer', 'user'] });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: bob.id, username: 'bob', email: 'bob.new@example.com', displayName: 'Bob B.', roles: ['user', 'viewer'], disabled: false });
      expect(Date.parse(res.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(bob.updatedAt));
      const event = (await auditRows(h, 'user.update')).filter((e) => e.target_id === bob.id).pop();
      expect(event?.details).toMatchObject({ before: { email: 'bob@example.com', roles: ['user'] }, after: { email: 'bob.new@example.com', roles: ['user', 'viewer'] } });
      // The new role's permission applies to bob's next request.
      const { token } = await h.login('bob', passwordFor('bob'));
      expect((await h.request.get('/api/v1/users').set(bearer(token))).status).toBe(200);
      expect(viewer.id).toMatch(/^rol_/);
    });

    it('leaves absent fields alone and clears the email with null', async () => {
      const res = await h.request.patch('/api/v1/users/bob').set(bearer(admin)).send({ email: null });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ email: null, displayName: 'Bob B.', roles: ['user', 'viewer'] });
      const none = await h.request.patch('/api/v1/users/bob').set(bearer(admin)).send({});
      expect(none.body).toMatchObject({ email: null, displayName: 'Bob B.', roles: ['user', 'viewer'] });
    });

    it('removes role bindings with roles: []', async () => {
      const res = await h.request.patch('/api/v1/users/bob').set(bearer(admin)).send({ roles: [] });
      expect(res.body.roles).toEqual([]);
      const { rows } = await h.db.query('SELECT 1 FROM role_bindings WHERE user_id = $1', [bob.id]);
      expect(rows).toHaveLength(0);
    });

    it('refuses an email another user has with 409, changing nothing', async () => {
      const res = await h.request.patch('/api/v1/users/bob').set(bearer(admin)).send({ email: 'DORA@example.com', displayName: 'not saved' });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('CONFLICT');
      expect((await h.request.get('/api/v1/users/bob').set(bearer(admin))).body.displayName).toBe('Bob B.');
    });

    it.each<[string, Record<string, unknown>, string]>([
      ['a bad email', { email: 'not-an-email' }, 'body.email'],
      ['a non-boolean disabled', { disabled: 'yes' }, 'body.disabled'],
      ['the username (not changeable)', { username: 'robert' }, 'body'],
      ['a password (use the reset endpoint)', { password: 'new-password-123' }, 'body'],
      ['a display name too long', { displayName: 'x'.repeat(201) }, 'body.displayName'],
    ])('refuses %s with 400 and the field path', async (_what, body, path) => {
      const res = await h.request.patch('/api/v1/users/bob').set(bearer(admin)).send(body);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual([path]);
    });

    it('refuses an unknown role with 400 and keeps the old bindings', async () => {
      await h.request.patch('/api/v1/users/bob').set(bearer(admin)).send({ roles: ['user'] });
      const res = await h.request.patch('/api/v1/users/bob').set(bearer(admin)).send({ roles: ['user', 'nope'] });
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([{ path: 'roles.1', message: expect.any(String) }]);
      expect((await h.request.get('/api/v1/users/bob').set(bearer(admin))).body.roles).toEqual(['user']);
    });

    it('answers 404 for an unknown user', async () => {
      const res = await h.request.patch('/api/v1/users/nobody').set(bearer(admin)).send({ displayName: 'x' });
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('USER_NOT_FOUND');
    });
  });

  describe('disable and enable', () => {
    it('disabling ends the sessions at once and refuses login; enabling lets them log in again', async () => {
      const { user, token, refreshToken } = await userWithToken(h, 'erin', ['user']);
      expect((await me(token)).status).toBe(200);

      const off = await h.request.patch(`/api/v1/users/${user.id}`).set(bearer(admin)).send({ disabled: true });
      expect(off.status).toBe(200);
      expect(off.body.disabled).toBe(true);

      const after = await me(token);
      expect(after.status).toBe(403);
      expect(after.body.code).toBe('AUTH_USER_DISABLED');
      const refresh = await h.request.post('/api/v1/auth/refresh').send({ refreshToken });
      expect(refresh.status).toBe(401);
      expect(refresh.body.code).toBe('AUTH_SESSION_REVOKED');
      const login = await h.request.post('/api/v1/auth/login').send({ username: 'erin', password: passwordFor('erin') });
      expect(login.status).toBe(403);
      expect(login.body.code).toBe('AUTH_USER_DISABLED');
      const { rows } = await h.db.query<{ n: string }>('SELECT count(*) AS n FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL', [user.id]);
      expect(Number(rows[0]?.n)).toBe(0);
      expect((await auditRows(h, 'user.disable')).some((e) => e.target_id === user.id && e.actor_name === 'admin')).toBe(true);
      expect((await auditRows(h, 'auth.login')).some((e) => e.target_id === user.id && e.outcome === 'failure' && e.details.reason === 'user disabled')).toBe(true);

      const on = await h.request.patch(`/api/v1/users/${user.id}`).set(bearer(admin)).send({ disabled: false });
      expect(on.body.disabled).toBe(false);
      expect((await auditRows(h, 'user.enable')).some((e) => e.target_id === user.id)).toBe(true);
      // The old session stays ended; a new login works.
      expect((await me(token)).body.code).toBe('AUTH_SESSION_REVOKED');
      const again = await h.login('erin', passwordFor('erin'));
      expect((await me(again.token)).status).toBe(200);
    });
  });

  describe('password reset by an admin', () => {
    it("sets the new password and ends all the user's sessions", async () => {
      const { user, token, refreshToken } = await userWithToken(h, 'frank', ['user']);
      const second = await h.login('frank', passwordFor('frank'));
      const res = await h.request.post(`/api/v1/users/${user.id}/password`).set(bearer(admin)).send({ password: 'frank-new-password' });
      expect(res.status).toBe(204);
      for (const t of [token, second.token]) expect((await me(t)).body.code).toBe('AUTH_SESSION_REVOKED');
      expect((await h.request.post('/api/v1/auth/refresh').send({ refreshToken })).body.code).toBe('AUTH_SESSION_REVOKED');
      expect((await h.request.post('/api/v1/auth/login').send({ username: 'frank', password: passwordFor('frank') })).status).toBe(401);
      await h.login('frank', 'frank-new-password');
      const events = (await auditRows(h, 'user.password_reset')).filter((e) => e.target_id === user.id);
      expect(events).toHaveLength(1);
      expect(JSON.stringify(events)).not.toContain('frank-new-password');
      expect(h.logs.join('\n')).not.toContain('frank-new-password');
    });

    it('refuses a weak password (400) and an unknown user (404)', async () => {
      const weak = await h.request.post('/api/v1/users/frank/password').set(bearer(admin)).send({ password: 'short' });
      expect(weak.status).toBe(400);
      expect(weak.body.errors.map((e: { path: string }) => e.path)).toEqual(['body.password']);
      const missing = await h.request.post('/api/v1/users/nobody/password').set(bearer(admin)).send({ password: 'long-enough-password' });
      expect(missing.status).toBe(404);
      expect(missing.body.code).toBe('USER_NOT_FOUND');
    });
  });

  describe('delete', () => {
    it('deletes a user: gone from the API, their token stops working, the deletion is audited', async () => {
      const { user, token } = await userWithToken(h, 'gina', ['user']);
      const res = await h.request.delete(`/api/v1/users/${user.id}`).set(bearer(admin));
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
      expect((await h.request.get(`/api/v1/users/${user.id}`).set(bearer(admin))).status).toBe(404);
      expect((await me(token)).status).toBe(401);
      const { rows } = await h.db.query('SELECT 1 FROM role_bindings WHERE user_id = $1 UNION ALL SELECT 1 FROM refresh_tokens WHERE user_id = $1', [user.id]);
      expect(rows).toHaveLength(0);
      const [event] = (await auditRows(h, 'user.delete')).filter((e) => e.target_id === user.id);
      expect(event?.details).toMatchObject({ before: { username: 'gina' } });
      // The username is free again.
      await createUser(h, 'gina');
    });

    it('answers 404 for an unknown user', async () => {
      const res = await h.request.delete('/api/v1/users/usr_00000000000000000000000000').set(bearer(admin));
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('USER_NOT_FOUND');
    });
  });

  describe('LAST_ADMIN: someone must remain able to manage users and roles', () => {
    const adminUser = async () => (await h.request.get('/api/v1/users/admin').set(bearer(admin))).body as UserBody;

    it.each<[string, (id: string) => Promise<{ status: number; body: { code: string } }>]>([
      ['disabling', (id) => h.request.patch(`/api/v1/users/${id}`).set(bearer(admin)).send({ disabled: true })],
      ['deleting', (id) => h.request.delete(`/api/v1/users/${id}`).set(bearer(admin))],
      ['unbinding every role', (id) => h.request.patch(`/api/v1/users/${id}`).set(bearer(admin)).send({ roles: [] })],
      ['rebinding to a role without the permissions', (id) => h.request.patch(`/api/v1/users/${id}`).set(bearer(admin)).send({ roles: ['user'] })],
    ])('refuses %s the last such user with 409 LAST_ADMIN and changes nothing', async (_what, act) => {
      const before = await adminUser();
      const res = await act(before.id);
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('LAST_ADMIN');
      expect(await adminUser()).toEqual(before);
      expect((await me(admin)).status).toBe(200);
    });

    it('does not count a user who holds only one of users:write and roles:write, nor a disabled one', async () => {
      await createRole(h, 'user-manager', ['users:write', 'users:read']);
      await createUser(h, 'half-admin', ['user-manager']);
      const disabled = await createUser(h, 'sleeping-admin', ['admin']);
      await h.request.patch(`/api/v1/users/${disabled.id}`).set(bearer(admin)).send({ disabled: true });
      const res = await h.request.patch('/api/v1/users/admin').set(bearer(admin)).send({ disabled: true });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('LAST_ADMIN');
    });

    it('allows it once another active user can manage users and roles', async () => {
      await createRole(h, 'co-admin', ['users:write', 'roles:write', 'users:read']);
      await createUser(h, 'deputy', ['co-admin']);
      const deputy = (await h.login('deputy', passwordFor('deputy'))).token;
      const off = await h.request.patch('/api/v1/users/admin').set(bearer(deputy)).send({ disabled: true });
      expect(off.status).toBe(200);
      // Now the deputy is the last one.
      const self = await h.request.patch('/api/v1/users/deputy').set(bearer(deputy)).send({ disabled: true });
      expect(self.body.code).toBe('LAST_ADMIN');
      const on = await h.request.patch('/api/v1/users/admin').set(bearer(deputy)).send({ disabled: false });
      expect(on.status).toBe(200);
      const fresh = (await h.login('admin', ADMIN_PASSWORD)).token;
      expect((await me(fresh)).status).toBe(200);
      admin = fresh;
    });
  });
});
