import { bearer, createHarness, type Harness } from './harness';
import { allPages, auditRows, createPolicy, createRole } from './fixtures';

interface PolicyBody {
  id: string;
  name: string;
  description: string;
  enabled: boolean;
  roles: string[];
  selector: { match: 'all' | 'any'; tags: Record<string, string>; connections: string[] };
  rules: Array<Record<string, unknown> & { id: string }>;
  version: number;
  createdAt: string;
  updatedAt: string;
}

const doc = (over: Record<string, unknown> = {}) => ({
  name: 'analysts-read',
  roles: ['analyst'],
  selector: { tags: { env: 'prod' } },
  rules: [
    { effect: 'allow', type: 'sql', kinds: ['select'] },
    { effect: 'deny', type: 'sql', relations: ['*.secrets'] },
  ],
  ...over,
});

describe('policies', () => {
  let h: Harness;
  let admin: string;
  beforeAll(async () => {
    h = await createHarness();
    admin = await h.adminToken();
    await createRole(h, 'analyst', []);
    await createRole(h, 'oncall', []);
  });
  afterAll(() => h.close());

  const paths = (body: { errors?: Array<{ path: string }> }) => (body.errors ?? []).map((e) => e.path);
  const count = async () => Number((await h.db.query<{ n: string }>('SELECT count(*) AS n FROM policies')).rows[0]?.n);

  describe('lifecycle', () => {
    let p: PolicyBody;

    it('creates a policy: defaults filled in, rule ids r1, r2… assigned, ETag "1", audited', async () => {
      const res = await h.request.post('/api/v1/policies').set(bearer(admin)).send(doc());
      expect(res.status).toBe(201);
      p = res.body;
      expect(res.headers.etag).toBe('"1"');
      expect(p).toEqual({
        id: expect.stringMatching(/^wl_[0-9a-z]{26}$/),
        name: 'analysts-read',
        description: '',
        enabled: true,
        roles: ['analyst'],
        selector: { match: 'all', tags: { env: 'prod' }, connections: [] },
        rules: [
          { id: 'r1', effect: 'allow', type: 'sql', kinds: ['select'] },
          { id: 'r2', effect: 'deny', type: 'sql', relations: ['*.secrets'] },
        ],
        version: 1,
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      const [event] = (await auditRows(h, 'policy.create')).filter((e) => e.target_id === p.id);
      expect(event).toMatchObject({ outcome: 'success', actor_name: 'admin', target_type: 'policy', details: { after: { name: 'analysts-read', version: 1 } } });
    });

    it('keeps given rule ids and numbers the others around them', async () => {
      const res = await h.request
        .post('/api/v1/policies')
        .set(bearer(admin))
        .send(doc({ name: 'ids-mixed', rules: [{ effect: 'allow', type: 'all' }, { id: 'r1', effect: 'deny', type: 'all' }, { effect: 'deny', type: 'all' }, { id: 'custom', effect: 'deny', type: 'all' }] }));
      expect(res.status).toBe(201);
      expect(res.body.rules.map((r: { id: string }) => r.id)).toEqual(['r2', 'r1', 'r3', 'custom']);
    });

    it('gets it by id and by name with its version as ETag', async () => {
      for (const key of [p.id, 'analysts-read', 'ANALYSTS-READ']) {
        const res = await h.request.get(`/api/v1/policies/${key}`).set(bearer(admin));
        expect(res.status).toBe(200);
        expect(res.headers.etag).toBe('"1"');
        expect(res.body).toEqual(p);
      }
    });

    it('lists policies across pages', async () => {
      for (let i = 0; i < 3; i += 1) await createPolicy(h, doc({ name: `paged-${i}` }));
      const { items } = await allPages<PolicyBody>(h, admin, '/api/v1/policies', 2);
      expect(items.map((i) => i.id)).toEqual((await h.db.query<{ id: string }>('SELECT id FROM policies ORDER BY id')).rows.map((r) => r.id));
      expect(items.find((i) => i.id === p.id)).toEqual(p);
    });

    it('PUT replaces the whole document and increments the version', async () => {
      const res = await h.request
        .put(`/api/v1/policies/${p.id}`)
        .set(bearer(admin))
        .send(doc({ description: 'Read-only for analysts.', roles: ['analyst', 'oncall'], selector: { match: 'any', tags: { env: 'prod', tier: 'gold' } }, rules: [{ effect: 'allow', type: 'sql', kinds: ['select', 'explain'] }] }));
      expect(res.status).toBe(200);
      expect(res.headers.etag).toBe('"2"');
      expect(res.body).toMatchObject({
        id: p.id,
        version: 2,
        description: 'Read-only for analysts.',
        roles: ['analyst', 'oncall'],
        selector: { match: 'any', tags: { env: 'prod', tier: 'gold' }, connections: [] },
        rules: [{ id: 'r1', effect: 'allow', type: 'sql', kinds: ['select', 'explain'] }],
      });
      expect(res.body.createdAt).toBe(p.createdAt);
    });

    it('PUT with If-Match of the current version succeeds (strong or weak form)', async () => {
      const a = await h.request.put(`/api/v1/policies/${p.id}`).set(bearer(admin)).set('If-Match', '"2"').send(doc({ description: 'v3' }));
      expect(a.status).toBe(200);
      expect(a.body.version).toBe(3);
      const b = await h.request.put(`/api/v1/policies/${p.id}`).set(bearer(admin)).set('If-Match', 'W/"3"').send(doc({ description: 'v4' }));
      expect(b.status).toBe(200);
      expect(b.body.version).toBe(4);
    });

    it('PUT with a stale If-Match is refused with 412 PRECONDITION_FAILED and the current version; nothing changes', async () => {
      const res = await h.request.put(`/api/v1/policies/${p.id}`).set(bearer(admin)).set('If-Match', '"2"').send(doc({ description: 'lost update' }));
      expect(res.status).toBe(412);
      expect(res.body.code).toBe('PRECONDITION_FAILED');
      expect(res.body.currentVersion).toBe(4);
      const now = await h.request.get(`/api/v1/policies/${p.id}`).set(bearer(admin));
      expect(now.body).toMatchObject({ version: 4, description: 'v4' });
    });

    it('refuses an If-Match that is not a version with 400', async () => {
      const res = await h.request.put(`/api/v1/policies/${p.id}`).set(bearer(admin)).set('If-Match', 'abc').send(doc());
      expect(res.status).toBe(400);
      expect(paths(res.body)).toEqual(['headers.if-match']);
    });

    it('audits updates with before and after', async () => {
      const updates = (await auditRows(h, 'policy.update')).filter((e) => e.target_id === p.id);
      expect(updates).toHaveLength(3);
      expect(updates.map((e) => [(e.details.before as PolicyBody).version, (e.details.after as PolicyBody).version])).toEqual([
        [1, 2],
        [2, 3],
        [3, 4],
      ]);
      expect(updates[0]?.details).toMatchObject({ before: { roles: ['analyst'] }, after: { roles: ['analyst', 'oncall'] } });
    });

    it('refuses a name another policy has with 409, on create and on PUT', async () => {
      const dup = await h.request.post('/api/v1/policies').set(bearer(admin)).send(doc({ name: 'PAGED-0' }));
      expect(dup.status).toBe(409);
      expect(dup.body.code).toBe('CONFLICT');
      const rename = await h.request.put(`/api/v1/policies/${p.id}`).set(bearer(admin)).send(doc({ name: 'paged-1' }));
      expect(rename.status).toBe(409);
      expect(rename.body.code).toBe('CONFLICT');
    });

    it('deletes it (audited with the document before); then 404', async () => {
      const res = await h.request.delete(`/api/v1/policies/${p.id}`).set(bearer(admin));
      expect(res.status).toBe(204);
      expect((await h.request.get(`/api/v1/policies/${p.id}`).set(bearer(admin))).status).toBe(404);
      const [event] = (await auditRows(h, 'policy.delete')).filter((e) => e.target_id === p.id);
      expect(event?.details).toMatchObject({ before: { id: p.id, version: 4, description: 'v4' } });
    });

    it.each([
      ['GET', (key: string) => h.request.get(`/api/v1/policies/${key}`).set(bearer(admin))],
      ['PUT', (key: string) => h.request.put(`/api/v1/policies/${key}`).set(bearer(admin)).send(doc({ name: 'ghost' }))],
      ['DELETE', (key: string) => h.request.delete(`/api/v1/policies/${key}`).set(bearer(admin))],
    ])('%s of an unknown policy is 404 POLICY_NOT_FOUND', async (_m, call) => {
      const res = await call('no-such-policy');
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('POLICY_NOT_FOUND');
    });
  });

  describe('semantic problems: 422 POLICY_INVALID with paths into the document', () => {
    it.each<[string, Record<string, unknown>, Array<[string, string]>]>([
      ['an unknown role', { roles: ['analyst', 'nobody'] }, [['roles.1', 'nobody']]],
      ['an invalid regular expression in a SQL rule', { rules: [{ effect: 'allow', type: 'all' }, { effect: 'allow', type: 'sql', pattern: '^select (' }] }, [['rules.1.pattern', 'regular expression']]],
      ['an invalid HTTP path regex and header regex', { rules: [{ effect: 'allow', type: 'http', pathRegex: '[', headers: { 'x-team': '(a' } }] }, [['rules.0.headers.x-team', ''], ['rules.0.pathRegex', '']]],
      ['several problems at once', { roles: ['ghost'], rules: [{ effect: 'allow', type: 'sql', pattern: '*' }] }, [['roles.0', 'ghost'], ['rules.0.pattern', '']]],
      ['duplicate rule ids', { rules: [{ id: 'same', effect: 'allow', type: 'all' }, { id: 'same', effect: 'deny', type: 'all' }] }, [['rules.1.id', 'same']]],
    ])('%s', async (_what, over, expected) => {
      const before = await count();
      const res = await h.request.post('/api/v1/policies').set(bearer(admin)).send(doc({ name: 'invalid-one', ...over }));
      expect(res.status).toBe(422);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.body.code).toBe('POLICY_INVALID');
      expect(res.body.errors.map((e: { path: string; message: string }) => [e.path, e.message])).toEqual(expected.map(([path, msg]) => [path, expect.stringContaining(msg)]));
      expect(await count()).toBe(before);
      // The same on PUT, against an existing policy, which stays as it was.
      const target = await createPolicy(h, doc({ name: `put-target-${before}` }));
      const put = await h.request.put(`/api/v1/policies/${target.id}`).set(bearer(admin)).send(doc({ name: target.name, ...over }));
      expect(put.status).toBe(422);
      expect(put.body.errors.map((e: { path: string }) => e.path)).toEqual(expected.map(([path]) => path));
      expect((await h.request.get(`/api/v1/policies/${target.id}`).set(bearer(admin))).body.version).toBe(1);
    });
  });

  describe('schema problems: 400 VALIDATION_FAILED with body paths', () => {
    it.each<[string, Record<string, unknown>, string[]]>([
      ['no rules', { rules: [] }, ['body.rules']],
      ['no roles', { roles: [] }, ['body.roles']],
      ['a missing selector', { selector: undefined }, ['body.selector']],
      ['an unknown selector match', { selector: { match: 'some', tags: {} } }, ['body.selector.match']],
      ['an unknown rule type', { rules: [{ effect: 'allow', type: 'ldap' }] }, ['body.rules.0.type']],
      ['an unknown effect', { rules: [{ effect: 'maybe', type: 'all' }] }, ['body.rules.0.effect']],
      ['an unknown statement kind', { rules: [{ effect: 'allow', type: 'sql', kinds: ['select', 'drop_everything'] }] }, ['body.rules.0.kinds.1']],
      ['an unknown field in a rule', { rules: [{ effect: 'allow', type: 'all', sql: 'select' }] }, ['body.rules.0']],
      ['a bad name', { name: 'has space' }, ['body.name']],
      ['an unknown top-level field', { version: 9 }, ['body']],
    ])('%s', async (_what, over, expected) => {
      const body = doc({ name: 'schema-bad', ...over });
      const res = await h.request.post('/api/v1/policies').set(bearer(admin)).send(JSON.parse(JSON.stringify(body)));
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect([...new Set(paths(res.body))]).toEqual(expected);
    });
  });

  describe('POST /policies/validate (dry run)', () => {
    it('returns the document as it would be stored and saves nothing', async () => {
      const before = await count();
      const events = (await auditRows(h)).length;
      const res = await h.request.post('/api/v1/policies/validate').set(bearer(admin)).send(doc({ name: 'dry-run' }));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        name: 'dry-run',
        description: '',
        enabled: true,
        roles: ['analyst'],
        selector: { match: 'all', tags: { env: 'prod' }, connections: [] },
        rules: [
          { id: 'r1', effect: 'allow', type: 'sql', kinds: ['select'] },
          { id: 'r2', effect: 'deny', type: 'sql', relations: ['*.secrets'] },
        ],
      });
      expect(await count()).toBe(before);
      expect((await auditRows(h)).length).toBe(events);
      expect((await h.request.get('/api/v1/policies/dry-run').set(bearer(admin))).status).toBe(404);
    });

    it('reports the same problems as a save would (422 semantic, 400 schema)', async () => {
      const semantic = await h.request.post('/api/v1/policies/validate').set(bearer(admin)).send(doc({ roles: ['ghost'], rules: [{ effect: 'allow', type: 'sql', pattern: '(' }] }));
      expect(semantic.status).toBe(422);
      expect(paths(semantic.body)).toEqual(['roles.0', 'rules.0.pattern']);
      const schema = await h.request.post('/api/v1/policies/validate').set(bearer(admin)).send(doc({ rules: [] }));
      expect(schema.status).toBe(400);
      expect(paths(schema.body)).toEqual(['body.rules']);
    });

    it('does not mind that the name is taken (it saves nothing)', async () => {
      await createPolicy(h, doc({ name: 'taken-name' }));
      expect((await h.request.post('/api/v1/policies/validate').set(bearer(admin)).send(doc({ name: 'taken-name' }))).status).toBe(200);
    });
  });
});
