import type { Response, Test } from 'supertest';
import { allRoutes } from '../src/app';
import { ADMIN_PASSWORD, bearer, createHarness, type Harness } from './harness';
import { auditRows, auditRowsAddedBy, createConnection, createUser, passwordFor } from './fixtures';

interface EventBody {
  id: string;
  time: string;
  recordedAt: string;
  actor: { id: string | null; name: string | null };
  action: string;
  outcome: string;
  target: { type: string | null; id: string | null };
  connectionId: string | null;
  grantId: string | null;
  sessionId: string | null;
  nodeId: string | null;
  request: { requestId: string | null; sourceIp: string | null; userAgent: string | null };
  details: Record<string, unknown>;
}

/** Parses a JSON Lines body: every line must be one JSON object. */
const ndjson = (text: string): EventBody[] => {
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line) as EventBody);
};

/** Collects a streamed body as text (supertest does not buffer unknown content types). */
const asText = (res: Response, cb: (err: Error | null, body: string) => void): void => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    body += chunk;
  });
  res.on('end', () => cb(null, body));
};

describe('audit trail', () => {
  let h: Harness;
  let admin: string;
  let adminId: string;
  beforeAll(async () => {
    h = await createHarness();
    admin = await h.adminToken();
    adminId = (await h.request.get('/api/v1/auth/me').set(bearer(admin))).body.id;
  });
  afterAll(() => h.close());

  const search = (qs: string) => h.request.get(`/api/v1/audit/events?${qs}`).set(bearer(admin));
  const exportAll = (qs: string) => h.request.get(`/api/v1/audit/export?${qs}`).set(bearer(admin)).buffer(true).parse(asText);

  describe('every admin change and every login is recorded', () => {
    type Change = [string, () => Test, { target: string; outcome?: string }];
    const CHANGES: Change[] = [
      ['user.create', () => h.request.post('/api/v1/users').set(bearer(admin)).send({ username: 'audited', password: passwordFor('audited') }), { target: 'user' }],
      ['user.update', () => h.request.patch('/api/v1/users/audited').set(bearer(admin)).send({ displayName: 'Audited' }), { target: 'user' }],
      ['user.disable', () => h.request.patch('/api/v1/users/audited').set(bearer(admin)).send({ disabled: true }), { target: 'user' }],
      ['user.enable', () => h.request.patch('/api/v1/users/audited').set(bearer(admin)).send({ disabled: false }), { target: 'user' }],
      ['user.password_reset', () => h.request.post('/api/v1/users/audited/password').set(bearer(admin)).send({ password: passwordFor('audited') }), { target: 'user' }],
      ['role.create', () => h.request.post('/api/v1/roles').set(bearer(admin)).send({ name: 'audited-role', permissions: [] }), { target: 'role' }],
      ['role.update', () => h.request.patch('/api/v1/roles/audited-role').set(bearer(admin)).send({ permissions: ['audit:read'] }), { target: 'role' }],
      ['role.delete', () => h.request.delete('/api/v1/roles/audited-role').set(bearer(admin)), { target: 'role' }],
      ['connection.create', () => h.request.post('/api/v1/connections').set(bearer(admin)).send({ name: 'audited-conn', protocol: 'tcp', host: 'ssh.internal', port: 22 }), { target: 'connection' }],
      ['connection.update', () => h.request.patch('/api/v1/connections/audited-conn').set(bearer(admin)).send({ port: 2222 }), { target: 'connection' }],
      ['connection.delete', () => h.request.delete('/api/v1/connections/audited-conn').set(bearer(admin)), { target: 'connection' }],
      ['policy.create', () => h.request.post('/api/v1/policies').set(bearer(admin)).send({ name: 'audited-pol', roles: ['user'], selector: { tags: { a: 'b' } }, rules: [{ effect: 'allow', type: 'all' }] }), { target: 'policy' }],
      ['policy.update', () => h.request.put('/api/v1/policies/audited-pol').set(bearer(admin)).send({ name: 'audited-pol', roles: ['user'], selector: { tags: { a: 'c' } }, rules: [{ effect: 'allow', type: 'all' }] }), { target: 'policy' }],
      ['policy.delete', () => h.request.delete('/api/v1/policies/audited-pol').set(bearer(admin)), { target: 'policy' }],
      ['settings.update', () => h.request.patch('/api/v1/settings').set(bearer(admin)).send({ registration: { enabled: false } }), { target: 'settings' }],
      ['key.rotate', () => h.request.post('/api/v1/keys/rotate').set(bearer(admin)).send({ use: 'access' }), { target: 'key' }],
      ['user.delete', () => h.request.delete('/api/v1/users/audited').set(bearer(admin)), { target: 'user' }],
      ['auth.login', () => h.request.post('/api/v1/auth/login').send({ username: 'admin', password: ADMIN_PASSWORD }), { target: 'user' }],
      ['auth.login', () => h.request.post('/api/v1/auth/login').send({ username: 'admin', password: 'wrong-password-here' }), { target: 'user', outcome: 'failure' }],
    ];

    it.each(CHANGES.map((c) => [c[0], c[2].outcome ?? 'success', c] as const))('%s (%s)', async (action, outcome, [, act, expected]) => {
      const { result: res, rows } = await auditRowsAddedBy(h, action, () => act().set('User-Agent', 'audit-test/1.0'));
      if (outcome === 'success') expect(res.status).toBeLessThan(300);
      else expect(res.status).toBe(401);
      expect(rows).toHaveLength(1);
      const [row] = rows;
      expect(row).toMatchObject({ outcome, target_type: expected.target, actor_name: 'admin' });
      if (outcome === 'success') expect(row?.actor_id).toBe(adminId);
      // The event carries the request it came from.
      const { rows: meta } = await h.db.query<{ request_id: string; source_ip: string; user_agent: string }>('SELECT request_id, source_ip, user_agent FROM audit_events WHERE id = $1', [row?.id]);
      expect(meta[0]).toEqual({ request_id: res.headers['x-request-id'], source_ip: expect.any(String), user_agent: 'audit-test/1.0' });
    });

    it('records logout and refresh as well', async () => {
      const { body } = await h.login('admin', ADMIN_PASSWORD);
      const refreshed = await h.request.post('/api/v1/auth/refresh').send({ refreshToken: body.refreshToken });
      expect(refreshed.status).toBe(200);
      await h.request.post('/api/v1/auth/logout').set(bearer(refreshed.body.accessToken));
      const refresh = (await auditRows(h, 'auth.refresh')).filter((e) => e.session_id === body.sessionId);
      const logout = (await auditRows(h, 'auth.logout')).filter((e) => e.session_id === body.sessionId);
      expect(refresh).toEqual([expect.objectContaining({ outcome: 'success', actor_name: 'admin' })]);
      expect(logout).toEqual([expect.objectContaining({ outcome: 'success', actor_name: 'admin' })]);
    });
  });

  describe('search filters', () => {
    let alice: { id: string };
    let conn: { id: string };
    beforeAll(async () => {
      alice = await createUser(h, 'alice-audit', ['user']);
      await h.login('alice-audit', passwordFor('alice-audit'));
      await h.request.post('/api/v1/auth/login').send({ username: 'alice-audit', password: 'not-her-password' });
      const token = (await h.login('alice-audit', passwordFor('alice-audit'))).token;
      await h.request.get('/api/v1/users').set(bearer(token)); // authz.denied
      conn = await createConnection(h, { name: 'filter-conn', protocol: 'postgres', host: 'db.internal', port: 5432 });
      await h.request.patch(`/api/v1/connections/${conn.id}`).set(bearer(admin)).send({ description: 'x' });
    });

    const items = async (qs: string): Promise<EventBody[]> => {
      const res = await search(`limit=500&${qs}`);
      expect(res.status).toBe(200);
      return res.body.items;
    };

    it('by actor id or name (any case)', async () => {
      const byId = await items(`actor=${alice.id}`);
      expect(byId.length).toBeGreaterThanOrEqual(3);
      expect(byId.every((e) => e.actor.id === alice.id)).toBe(true);
      const byName = await items('actor=ALICE-AUDIT');
      expect(byName.map((e) => e.id)).toEqual(byId.map((e) => e.id));
      // A failed login for an unknown user has only the name it tried.
      await h.request.post('/api/v1/auth/login').send({ username: 'ghost-user', password: 'whatever-password' });
      const ghost = await items('actor=ghost-user');
      expect(ghost.map((e) => [e.action, e.outcome, e.actor])).toEqual([['auth.login', 'failure', { id: null, name: 'ghost-user' }]]);
      expect(await items('actor=nobody-at-all')).toEqual([]);
    });

    it('by exact action', async () => {
      const logins = await items('action=auth.login');
      expect(logins.length).toBeGreaterThan(2);
      expect(new Set(logins.map((e) => e.action))).toEqual(new Set(['auth.login']));
    });

    it('by action prefix auth.* (which does not match authz.*)', async () => {
      const auth = await items('action=auth.*');
      expect(auth.every((e) => e.action.startsWith('auth.'))).toBe(true);
      expect(new Set(auth.map((e) => e.action))).toEqual(new Set(['auth.login', 'auth.logout', 'auth.refresh']));
      expect((await items('action=authz.*')).map((e) => e.action)).toEqual(['authz.denied']);
      const { rows } = await h.db.query<{ n: string }>("SELECT count(*) AS n FROM audit_events WHERE action LIKE 'auth.%'");
      expect(auth).toHaveLength(Number(rows[0]?.n));
    });

    it('by outcome', async () => {
      const failures = await items('outcome=failure');
      expect(failures.length).toBeGreaterThan(0);
      expect(failures.every((e) => e.outcome === 'failure')).toBe(true);
      expect(failures.some((e) => e.actor.name === 'alice-audit' && e.action === 'auth.login')).toBe(true);
      expect((await items('outcome=denied')).map((e) => e.action)).toEqual(['authz.denied']);
    });

    it('by connection and by target', async () => {
      const byConn = await items(`connection=${conn.id}`);
      expect(byConn.map((e) => e.action).sort()).toEqual(['connection.create', 'connection.update']);
      expect(byConn.every((e) => e.connectionId === conn.id)).toBe(true);
      const byTarget = await items(`target=${alice.id}`);
      expect(byTarget.length).toBeGreaterThan(0);
      expect(byTarget.every((e) => e.target.id === alice.id)).toBe(true);
      expect(byTarget.map((e) => e.action)).toEqual(expect.arrayContaining(['user.create', 'auth.login']));
    });

    it('combines filters (AND)', async () => {
      const r = await items(`actor=alice-audit&action=auth.login&outcome=success`);
      expect(r).toHaveLength(2);
      expect(r.every((e) => e.actor.name === 'alice-audit' && e.action === 'auth.login' && e.outcome === 'success')).toBe(true);
    });

    it('by time range: from inclusive, to exclusive', async () => {
      const t0 = Date.parse('2001-02-03T04:05:06.000Z');
      for (let i = 0; i < 5; i += 1) {
        await h.cp.audit.record({ action: 'range.test', outcome: 'success', time: new Date(t0 + i * 60_000), details: { i } });
      }
      const iso = (minutes: number) => new Date(t0 + minutes * 60_000).toISOString();
      const got = async (qs: string) => (await items(`action=range.test&${qs}`)).map((e) => e.details.i);
      expect(await got(`from=${iso(1)}&to=${iso(3)}`)).toEqual([2, 1]);
      expect(await got(`from=${iso(3)}`)).toEqual([4, 3]);
      expect(await got(`to=${iso(1)}`)).toEqual([0]);
      expect(await got(`from=${encodeURIComponent('2001-02-03T06:06:06+02:00')}&to=${iso(2)}`)).toEqual([1]);
      expect(await got('')).toEqual([4, 3, 2, 1, 0]);
    });

    it.each<readonly [string, string, string, boolean]>([
      ['from equal to to', `from=2001-01-01T00:00:00Z&to=2001-01-01T00:00:00Z`, 'query.to', true],
      ['from after to', `from=2001-01-02T00:00:00Z&to=2001-01-01T00:00:00Z`, 'query.to', true],
      ['a date that is not ISO 8601', 'from=yesterday', 'query.from', true],
      ['an unknown outcome', 'outcome=maybe', 'query.outcome', true],
      ['an action with other characters', `action=${encodeURIComponent("auth.login' OR 1=1")}`, 'query.action', true],
      ['a cursor that is not ours', 'cursor=eyJ0IjoiMjAwMSJ9', 'cursor', false],
      ...['2001', '2001-02-30T00:00:00Z', '0000-01-01T00:00:00Z', '2001-01-01 00:00:00', 'now', '2001-01-01T00:00:00+01:00'].map(
        (t) => [`a cursor with time ${t}`, `cursor=${Buffer.from(JSON.stringify({ t, id: 'evt_x' })).toString('base64url')}`, 'cursor', false] as const,
      ),
    ])('refuses %s with 400 (search, and export where it applies)', async (_what, qs, path, onExport) => {
      const responses = [await search(qs), ...(onExport ? [await h.request.get(`/api/v1/audit/export?${qs}`).set(bearer(admin))] : [])];
      for (const res of responses) {
        expect(res.status).toBe(400);
        expect(res.body.code).toBe('VALIDATION_FAILED');
        expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual([path]);
      }
    });
  });

  describe('pagination', () => {
    /** Walks every page of a search, returning event ids in order. */
    const walk = async (qs: string, limit: number): Promise<string[]> => {
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await search(`${qs}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        ids.push(...res.body.items.map((e: EventBody) => e.id));
        cursor = res.body.nextCursor;
      } while (cursor);
      return ids;
    };
    const expected = async (action: string) =>
      (await h.db.query<{ id: string }>('SELECT id FROM audit_events WHERE action = $1 ORDER BY time DESC, id DESC', [action])).rows.map((r) => r.id);

    it('is stable across pages when many events share one time (ties broken by id)', async () => {
      const time = new Date('2002-01-01T00:00:00.000Z');
      for (let i = 0; i < 23; i += 1) await h.cp.audit.record({ action: 'page.tie', outcome: 'success', time });
      for (let i = 0; i < 7; i += 1) await h.cp.audit.record({ action: 'page.tie', outcome: 'success', time: new Date(time.getTime() + (i % 3) - 1) });
      const ids = await walk('action=page.tie', 4);
      expect(ids).toHaveLength(30);
      expect(new Set(ids).size).toBe(30);
      expect(ids).toEqual(await expected('page.tie'));
    });

    it('does not skip events whose times differ by less than a millisecond', async () => {
      await h.db.query(
        `INSERT INTO audit_events (id, time, action, outcome, details)
         SELECT 'evt_us_' || lpad(g::text, 4, '0'), timestamptz '2003-01-01 00:00:00+00' + (g * 137) * interval '1 microsecond', 'page.micro', 'success', '{}'
         FROM generate_series(1, 50) g`,
      );
      const ids = await walk('action=page.micro', 7);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toEqual(await expected('page.micro'));
    });

    it('walks the whole trail without filters, newest first', async () => {
      const ids = await walk('', 50);
      const { rows } = await h.db.query<{ id: string }>('SELECT id FROM audit_events ORDER BY time DESC, id DESC');
      expect(ids).toEqual(rows.map((r) => r.id));
    });
  });

  describe('export (JSON Lines)', () => {
    const BULK = 2500;
    beforeAll(async () => {
      // More than two internal export batches (1000 each), with distinct sub-millisecond times.
      await h.db.query(
        `INSERT INTO audit_events (id, time, action, outcome, actor_name, details)
         SELECT 'evt_bulk_' || lpad(g::text, 5, '0'), timestamptz '2004-06-01 00:00:00+00' + (g * 137) * interval '1 microsecond',
                'bulk.event', CASE WHEN g % 5 = 0 THEN 'failure' ELSE 'success' END, 'bulk-actor', jsonb_build_object('n', g)
         FROM generate_series(1, $1::int) g`,
        [BULK],
      );
    });

    it('streams every matching event as one JSON object per line, newest first, across batches', async () => {
      const res = await exportAll('action=bulk.event');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
      expect(res.headers['content-disposition']).toContain('attachment');
      const events = ndjson(res.body as string);
      expect(events).toHaveLength(BULK);
      expect(new Set(events.map((e) => e.id)).size).toBe(BULK);
      expect(events.every((e) => e.action === 'bulk.event' && e.actor.name === 'bulk-actor')).toBe(true);
      expect(events.map((e) => e.details.n)).toEqual(Array.from({ length: BULK }, (_, i) => BULK - i));
      expect(Object.keys(events[0] as EventBody).sort()).toEqual(['action', 'actor', 'connectionId', 'details', 'grantId', 'id', 'nodeId', 'outcome', 'recordedAt', 'request', 'sessionId', 'target', 'time']);
    });

    it('applies the filters', async () => {
      const failures = ndjson((await exportAll('action=bulk.event&outcome=failure')).body as string);
      expect(failures).toHaveLength(BULK / 5);
      expect(failures.every((e) => e.outcome === 'failure' && (e.details.n as number) % 5 === 0)).toBe(true);
      const ranged = ndjson((await exportAll(`action=bulk.event&from=2004-06-01T00:00:00.100Z&to=2004-06-01T00:00:00.200Z`)).body as string);
      // Event n happened n × 137 µs after the start.
      const inRange = Array.from({ length: BULK }, (_, i) => BULK - i).filter((n) => n * 137 >= 100_000 && n * 137 < 200_000);
      expect(inRange.length).toBeGreaterThan(700);
      expect(ranged.map((e) => e.details.n)).toEqual(inRange);
    });

    it('exports the whole trail when unfiltered', async () => {
      const events = ndjson((await exportAll('')).body as string);
      const { rows } = await h.db.query<{ n: string }>('SELECT count(*) AS n FROM audit_events');
      expect(events).toHaveLength(Number(rows[0]?.n));
    });

    it('exports an empty body for no match', async () => {
      const res = await exportAll('action=no.such.action');
      expect(res.status).toBe(200);
      expect(res.body).toBe('');
    });
  });

  describe('the trail cannot be edited through the API', () => {
    it.each([
      ['put', '/api/v1/audit/events'],
      ['patch', '/api/v1/audit/events'],
      ['delete', '/api/v1/audit/events'],
      ['post', '/api/v1/audit/events'],
      ['put', '/api/v1/audit/events/evt_bulk_00001'],
      ['patch', '/api/v1/audit/events/evt_bulk_00001'],
      ['delete', '/api/v1/audit/events/evt_bulk_00001'],
      ['get', '/api/v1/audit/events/evt_bulk_00001'],
      ['delete', '/api/v1/audit/export'],
      ['delete', '/api/v1/audit'],
    ] as const)('%s %s → 404 ROUTE_NOT_FOUND', async (method, path) => {
      const res = await h.request[method](path).set(bearer(admin)).send({ outcome: 'failure' });
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.body.code).toBe('ROUTE_NOT_FOUND');
      const { rows } = await h.db.query<{ outcome: string }>("SELECT outcome FROM audit_events WHERE id = 'evt_bulk_00001'");
      expect(rows).toEqual([{ outcome: 'success' }]);
    });

    it('no route in the API edits or deletes audit events', () => {
      const writes = allRoutes(h.cp).filter((r) => r.path.startsWith('/audit') && r.method !== 'get');
      expect(writes).toEqual([]);
    });
  });
});
