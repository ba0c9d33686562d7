import { bearer, createHarness, type Harness } from './harness';
import { createPolicy, createRole } from './fixtures';

/** POST /policies/evaluate: the control plane's "explain", on the same engine the data plane enforces with. */
describe('policy explain', () => {
  let h: Harness;
  let admin: string;
  const explain = (body: Record<string, unknown>, token = admin) => h.request.post('/api/v1/policies/evaluate').set(bearer(token)).send(body);

  beforeAll(async () => {
    h = await createHarness();
    admin = await h.adminToken();
    await createRole(h, 'analyst', []);
    await createRole(h, 'web', []);
    await h.request.post('/api/v1/users').set(bearer(admin)).send({ username: 'ana', password: 'ana-password-123', roles: ['analyst'] });
    for (const c of [
      { name: 'reports', protocol: 'postgres', host: 'db.internal', port: 5432, database: 'reports', tags: { env: 'prod' } },
      { name: 'intranet', protocol: 'http', host: 'intranet.internal', port: 80, tags: { env: 'prod' } },
    ]) {
      expect((await h.request.post('/api/v1/connections').set(bearer(admin)).send(c)).status).toBe(201);
    }
    await createPolicy(h, {
      name: 'analysts',
      roles: ['analyst'],
      selector: { tags: { env: 'prod' } },
      rules: [
        { id: 'read', name: 'read only', effect: 'allow', type: 'sql', kinds: ['select'] },
        { id: 'no-secrets', name: 'no secrets', effect: 'deny', type: 'sql', relations: ['*.secrets'] },
      ],
    });
    await createPolicy(h, {
      name: 'web-get',
      roles: ['web'],
      selector: { connections: ['intranet'] },
      rules: [{ id: 'get-api', effect: 'allow', type: 'http', methods: ['GET'], paths: ['/api/**'] }],
    });
  });
  afterAll(() => h.close());

  it('allows a select for a user and names the rule and statement facts', async () => {
    const res = await explain({ connection: 'reports', user: 'ana', sql: 'SELECT id FROM public.orders' });
    expect(res.status).toBe(200);
    expect(res.body.decision).toBe('allow');
    expect(res.body.rule).toMatchObject({ policyName: 'analysts', ruleId: 'read' });
    expect(res.body.subject).toEqual({ user: 'ana', roles: ['analyst'] });
    expect(res.body.statements).toHaveLength(1);
    expect(res.body.statements[0]).toMatchObject({ kind: 'select' });
    expect(JSON.stringify(res.body.statements[0])).toContain('orders');
    expect(res.body.policy.policies.map((p: { name: string }) => p.name)).toEqual(['analysts']);
  });

  it.each([
    ['a second statement hidden after a select', 'SELECT 1; DROP TABLE orders'],
    ['a data-modifying CTE', 'WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d'],
    ['a denied relation in a subquery', 'SELECT * FROM orders WHERE id IN (SELECT id FROM app.secrets)'],
    ['a parse error', 'SELEC 1'],
  ])('denies %s', async (_name, sql) => {
    const res = await explain({ connection: 'reports', user: 'ana', sql });
    expect(res.status).toBe(200);
    expect(res.body.decision).toBe('deny');
    expect(res.body.reason).toEqual(expect.any(String));
  });

  it('evaluates HTTP for a set of roles and returns the normalised target', async () => {
    const ok = await explain({ connection: 'intranet', roles: ['web'], http: { method: 'GET', target: '/api/./v1/%7Eusers' } });
    expect(ok.body).toMatchObject({ decision: 'allow', target: '/api/v1/~users', method: 'GET' });
    const bypass = await explain({ connection: 'intranet', roles: ['web'], http: { method: 'GET', target: '/api/../admin' } });
    expect(bypass.body.decision).toBe('deny');
    const post = await explain({ connection: 'intranet', roles: ['web'], http: { method: 'POST', target: '/api/x' } });
    expect(post.body.decision).toBe('deny');
  });

  it('dry-runs an unsaved draft that replaces the stored policy of the same name, saving nothing', async () => {
    const draft = { name: 'analysts', roles: ['analyst'], selector: { tags: { env: 'prod' } }, rules: [{ effect: 'allow', type: 'sql', kinds: ['select', 'insert'] }] };
    const res = await explain({ connection: 'reports', user: 'ana', sql: 'INSERT INTO orders VALUES (1)', drafts: [draft] });
    expect(res.body.decision).toBe('allow');
    const stored = await explain({ connection: 'reports', user: 'ana', sql: 'INSERT INTO orders VALUES (1)' });
    expect(stored.body.decision).toBe('deny');
    const bad = await explain({ connection: 'reports', user: 'ana', sql: 'SELECT 1', drafts: [{ ...draft, rules: [{ effect: 'allow', type: 'sql', pattern: '(' }] }] });
    expect(bad.status).toBe(422);
    expect(bad.body.errors[0].path).toBe('drafts.0.rules.0.pattern');
  });

  it('refuses mismatched protocols, bad bodies, unknown subjects and callers without policies:read', async () => {
    expect((await explain({ connection: 'intranet', user: 'ana', sql: 'SELECT 1' })).status).toBe(400);
    expect((await explain({ connection: 'reports', user: 'ana', roles: ['web'], sql: 'SELECT 1' })).status).toBe(400);
    expect((await explain({ connection: 'reports', user: 'ana' })).status).toBe(400);
    expect((await explain({ connection: 'nope', user: 'ana', sql: 'SELECT 1' })).body.code).toBe('CONNECTION_NOT_FOUND');
    expect((await explain({ connection: 'reports', user: 'ghost', sql: 'SELECT 1' })).body.code).toBe('USER_NOT_FOUND');
    expect((await explain({ connection: 'reports', roles: ['ghost'], sql: 'SELECT 1' })).status).toBe(400);
    const ana = (await h.login('ana', 'ana-password-123')).token;
    expect((await explain({ connection: 'reports', user: 'ana', sql: 'SELECT 1' }, ana)).status).toBe(403);
  });
});

describe('role names in policies', () => {
  let h: Harness;
  let admin: string;
  beforeAll(async () => {
    h = await createHarness();
    admin = await h.adminToken();
    await createRole(h, 'dba', []);
    await createPolicy(h, { name: 'dba-all', roles: ['dba'], selector: { tags: { env: 'prod' } }, rules: [{ effect: 'allow', type: 'all' }] });
  });
  afterAll(() => h.close());

  it('follows a role rename into the policies that bind it (and bumps their version)', async () => {
    const res = await h.request.patch('/api/v1/roles/dba').set(bearer(admin)).send({ name: 'db-admin' });
    expect(res.status).toBe(200);
    const p = await h.request.get('/api/v1/policies/dba-all').set(bearer(admin));
    expect(p.body.roles).toEqual(['db-admin']);
    expect(p.body.version).toBe(2);
  });

  it('refuses to delete a role that policies still use', async () => {
    const res = await h.request.delete('/api/v1/roles/db-admin').set(bearer(admin));
    expect(res.status).toBe(409);
    expect(res.body.detail).toContain('dba-all');
    expect((await h.request.delete('/api/v1/policies/dba-all').set(bearer(admin))).status).toBe(204);
    expect((await h.request.delete('/api/v1/roles/db-admin').set(bearer(admin))).status).toBe(204);
  });
});
