import { randomBytes } from 'node:crypto';
import type { Response } from 'supertest';
import { bearer, createHarness, type Harness } from './harness';
import { createConnection, createPolicy, createRole, createUser, passwordFor } from './fixtures';

interface ConnectionBody {
  id: string;
  name: string;
  protocol: string;
  host: string;
  port: number;
  tlsMode: string;
  database: string | null;
  description: string;
  tags: Record<string, string>;
  metadata: Record<string, unknown>;
  maxGrantSeconds: number;
  credential: { kind: 'password'; username: string } | { kind: 'header'; headerName: string } | null;
  createdAt: string;
  updatedAt: string;
}

const secret = (label: string) => `${label}-${randomBytes(12).toString('hex')}`;

describe('connections', () => {
  let h: Harness;
  let admin: string;
  /** Every response body seen in this file; none may contain a secret. */
  const seen: string[] = [];
  const record = (res: Response): Response => {
    seen.push(res.text ?? '', JSON.stringify(res.headers));
    return res;
  };
  const SECRETS = {
    pg: secret('pg-password'),
    header: secret('Bearer hdr-token'),
    pg2: secret('pg-password-replaced'),
    header2: secret('hdr-token-replaced'),
    rejected: secret('rejected-secret'),
  };

  beforeAll(async () => {
    h = await createHarness();
    admin = await h.adminToken();
  });
  afterAll(() => h.close());

  const api = {
    post: async (body: unknown) => record(await h.request.post('/api/v1/connections').set(bearer(admin)).send(body as object)),
    patch: async (id: string, body: unknown) => record(await h.request.patch(`/api/v1/connections/${id}`).set(bearer(admin)).send(body as object)),
    get: async (id: string) => record(await h.request.get(`/api/v1/connections/${id}`).set(bearer(admin))),
    list: async (qs = 'scope=all') => record(await h.request.get(`/api/v1/connections?${qs}`).set(bearer(admin))),
  };

  describe('credentials are write-only and encrypted at rest', () => {
    let pg: ConnectionBody;
    let web: ConnectionBody;

    it('creates a postgres connection with a password credential; the response shows only that one is set', async () => {
      const res = await api.post({
        name: 'orders-db',
        protocol: 'postgres',
        host: 'orders.db.internal',
        port: 5432,
        tlsMode: 'verify-full',
        database: 'orders',
        description: 'Orders',
        tags: { env: 'prod', team: 'payments' },
        metadata: { owner: 'payments' },
        maxGrantSeconds: 1800,
        credential: { kind: 'password', username: 'pa_proxy', password: SECRETS.pg },
      });
      expect(res.status).toBe(201);
      pg = res.body;
      expect(pg).toEqual({
        id: expect.stringMatching(/^con_[0-9a-z]{26}$/),
        name: 'orders-db',
        protocol: 'postgres',
        host: 'orders.db.internal',
        port: 5432,
        tlsMode: 'verify-full',
        database: 'orders',
        description: 'Orders',
        tags: { env: 'prod', team: 'payments' },
        metadata: { owner: 'payments' },
        maxGrantSeconds: 1800,
        credential: { kind: 'password', username: 'pa_proxy' },
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
    });

    it('creates an http connection with a header credential, and defaults the rest', async () => {
      const res = await api.post({ name: 'billing-api', protocol: 'http', host: '10.1.2.3', port: 8443, credential: { kind: 'header', headerName: 'Authorization', value: SECRETS.header } });
      expect(res.status).toBe(201);
      web = res.body;
      expect(web).toMatchObject({ tlsMode: 'disable', database: null, description: '', tags: {}, metadata: {}, maxGrantSeconds: 3600, credential: { kind: 'header', headerName: 'Authorization' } });
    });

    it('stores ciphertext only, and gives the clear secret back to the grant path', async () => {
      const { rows } = await h.db.query<{ connection_id: string; secret_ciphertext: Buffer; key_id: string }>('SELECT * FROM connection_credentials ORDER BY connection_id');
      expect(rows).toHaveLength(2);
      for (const r of rows) {
        expect(r.key_id).toBe('k1');
        for (const s of [SECRETS.pg, SECRETS.header]) {
          expect(r.secret_ciphertext.includes(Buffer.from(s))).toBe(false);
          expect(r.secret_ciphertext.toString('latin1')).not.toContain(s.slice(-16));
        }
      }
      expect(await h.cp.connections.readCredential(pg.id)).toEqual({ kind: 'password', username: 'pa_proxy', password: SECRETS.pg });
      expect(await h.cp.connections.readCredential(web.id)).toEqual({ kind: 'header', headerName: 'Authorization', value: SECRETS.header });
    });

    it('binds a ciphertext to its connection: moved to another row it does not decrypt', async () => {
      const other = await createConnection(h, { name: 'swap-target', protocol: 'postgres', host: 'x.internal', port: 5432 });
      await h.db.query(
        `INSERT INTO connection_credentials (connection_id, kind, username, secret_ciphertext, key_id)
         SELECT $2, kind, username, secret_ciphertext, key_id FROM connection_credentials WHERE connection_id = $1`,
        [pg.id, other.id],
      );
      await expect(h.cp.connections.readCredential(other.id)).rejects.toThrow();
      record(await h.request.delete(`/api/v1/connections/${other.id}`).set(bearer(admin)));
    });

    it('never shows the secret when reading: get (by id and name) and list', async () => {
      for (const key of [pg.id, 'orders-db', 'ORDERS-DB']) {
        const res = await api.get(key);
        expect(res.status).toBe(200);
        expect(res.body).toEqual(pg);
      }
      const list = await api.list();
      expect(list.status).toBe(200);
      expect(list.body.items).toEqual([pg, web].sort((a, b) => a.id.localeCompare(b.id)));
    });

    it('patches other fields and leaves the credential as it is when absent', async () => {
      const res = await api.patch(pg.id, { description: 'Orders (primary)', tags: { env: 'prod' } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ description: 'Orders (primary)', tags: { env: 'prod' }, database: 'orders', credential: { kind: 'password', username: 'pa_proxy' } });
      expect(await h.cp.connections.readCredential(pg.id)).toEqual({ kind: 'password', username: 'pa_proxy', password: SECRETS.pg });
    });

    it('replaces the credential with PATCH', async () => {
      const a = await api.patch(pg.id, { credential: { kind: 'password', username: 'pa_proxy2', password: SECRETS.pg2 } });
      expect(a.status).toBe(200);
      expect(a.body.credential).toEqual({ kind: 'password', username: 'pa_proxy2' });
      expect(await h.cp.connections.readCredential(pg.id)).toEqual({ kind: 'password', username: 'pa_proxy2', password: SECRETS.pg2 });
      const b = await api.patch('billing-api', { credential: { kind: 'header', headerName: 'X-Api-Key', value: SECRETS.header2 } });
      expect(b.body.credential).toEqual({ kind: 'header', headerName: 'X-Api-Key' });
      expect(await h.cp.connections.readCredential(web.id)).toEqual({ kind: 'header', headerName: 'X-Api-Key', value: SECRETS.header2 });
    });

    it('removes the credential with credential: null', async () => {
      const res = await api.patch(web.id, { credential: null });
      expect(res.status).toBe(200);
      expect(res.body.credential).toBeNull();
      expect(await h.cp.connections.readCredential(web.id)).toBeNull();
      expect((await h.db.query('SELECT 1 FROM connection_credentials WHERE connection_id = $1', [web.id])).rows).toHaveLength(0);
    });

    it('does not echo a secret sent in an invalid request', async () => {
      const res = await api.post({ name: 'bad-combo', protocol: 'postgres', host: 'db.internal', port: 5432, credential: { kind: 'header', headerName: 'X-Key', value: SECRETS.rejected } });
      expect(res.status).toBe(400);
    });

    it('audits every change with credentialChanged, and no audit row holds a secret', async () => {
      const { rows } = await h.db.query<{ action: string; target_id: string; details: { credentialChanged?: boolean } }>(
        "SELECT * FROM audit_events WHERE action LIKE 'connection.%' ORDER BY recorded_at, id",
      );
      expect(rows.filter((r) => r.target_id === pg.id).map((r) => [r.action, r.details.credentialChanged])).toEqual([
        ['connection.create', true],
        ['connection.update', false],
        ['connection.update', true],
      ]);
      expect(rows.filter((r) => r.target_id === web.id).map((r) => [r.action, r.details.credentialChanged])).toEqual([
        ['connection.create', true],
        ['connection.update', true],
        ['connection.update', true],
      ]);
      const everything = JSON.stringify((await h.db.query('SELECT * FROM audit_events')).rows);
      for (const s of Object.values(SECRETS)) expect(everything).not.toContain(s);
    });

    it('no response and no log line ever held a secret', async () => {
      expect(seen.length).toBeGreaterThan(10);
      const logs = h.logs.join('\n');
      expect(h.logs.length).toBeGreaterThan(0);
      for (const s of Object.values(SECRETS)) {
        expect(seen.join('\n')).not.toContain(s);
        expect(logs).not.toContain(s);
      }
    });
  });

  describe('validation', () => {
    const base = { protocol: 'postgres', host: 'db.internal', port: 5432 };
    let n = 0;
    const fresh = () => `valid-${(n += 1)}`;

    it.each<[string, Record<string, unknown>, string[]]>([
      ['a header credential on a postgres connection', { ...base, credential: { kind: 'header', headerName: 'X-Key', value: 'v' } }, ['body.credential.kind']],
      ['a password credential on a tcp connection', { ...base, protocol: 'tcp', credential: { kind: 'password', username: 'u', password: 'p' } }, ['body.credential.kind']],
      ['a database on an http connection', { ...base, protocol: 'http', database: 'app' }, ['body.database']],
      ['a database on a tcp connection', { ...base, protocol: 'tcp', database: 'app' }, ['body.database']],
      ['a URL as host', { ...base, host: 'http://db.internal' }, ['body.host']],
      ['a host with a port', { ...base, host: 'db.internal:5432' }, ['body.host']],
      ['a host with a space', { ...base, host: 'db internal' }, ['body.host']],
      ['a host with a path', { ...base, host: 'db.internal/x' }, ['body.host']],
      ['an empty host', { ...base, host: '' }, ['body.host']],
      ['port 0', { ...base, port: 0 }, ['body.port']],
      ['port 65536', { ...base, port: 65536 }, ['body.port']],
      ['a port as a string', { ...base, port: '5432' }, ['body.port']],
      ['an unknown protocol', { ...base, protocol: 'mysql' }, ['body.protocol']],
      ['an unknown TLS mode', { ...base, tlsMode: 'sometimes' }, ['body.tlsMode']],
      ['a grant length under a minute', { ...base, maxGrantSeconds: 59 }, ['body.maxGrantSeconds']],
      ['a header name with an underscore', { ...base, protocol: 'http', credential: { kind: 'header', headerName: 'X_Key', value: 'v' } }, ['body.credential.headerName']],
      ['a credential without its secret', { ...base, credential: { kind: 'password', username: 'u' } }, ['body.credential.password']],
      ['an unknown credential kind', { ...base, credential: { kind: 'certificate' } }, ['body.credential.kind']],
      ['a bad tag key', { ...base, tags: { 'has space': 'x' } }, ['body.tags.has space']],
      ['an unknown field', { ...base, password: 'x' }, ['body']],
    ])('refuses %s with 400 and the field path', async (_what, body, paths) => {
      const name = fresh();
      const res = await api.post({ name, ...body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect([...new Set(res.body.errors.map((e: { path: string }) => e.path))]).toEqual(paths);
      expect((await api.get(name)).status).toBe(404);
    });

    it.each([
      ['an IPv4 address', '192.168.1.20'],
      ['a bracketed IPv6 address', '[fd00::1]'],
      ['a single-label host', 'localhost'],
    ])('accepts %s as host', async (_what, host) => {
      const res = await api.post({ name: fresh(), ...base, host });
      expect(res.status).toBe(201);
      expect(res.body.host).toBe(host);
    });

    it('refuses a name in use (any case) with 409 CONFLICT, on create and on rename', async () => {
      await createConnection(h, { name: 'unique-name', ...base });
      const other = await createConnection(h, { name: 'other-name', ...base });
      const dup = await api.post({ name: 'UNIQUE-name', ...base });
      expect(dup.status).toBe(409);
      expect(dup.body.code).toBe('CONFLICT');
      const rename = await api.patch(other.id, { name: 'unique-NAME' });
      expect(rename.status).toBe(409);
      expect(rename.body.code).toBe('CONFLICT');
    });

    describe('PATCH checks the connection as it will be', () => {
      it('refuses a header credential on an existing postgres connection', async () => {
        const c = await createConnection(h, { name: fresh(), ...base });
        const res = await api.patch(c.id, { credential: { kind: 'header', headerName: 'X-Key', value: 'v' } });
        expect(res.status).toBe(400);
        expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['body.credential.kind']);
      });

      it('refuses switching a postgres connection with a database to http unless the database is cleared', async () => {
        const c = await createConnection(h, { name: fresh(), ...base, database: 'app' });
        const res = await api.patch(c.id, { protocol: 'http' });
        expect(res.status).toBe(400);
        expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['body.database']);
        expect((await api.get(c.id)).body.protocol).toBe('postgres');
        const ok = await api.patch(c.id, { protocol: 'http', database: null });
        expect(ok.status).toBe(200);
        expect(ok.body).toMatchObject({ protocol: 'http', database: null });
      });

      it('refuses switching an http connection with a header credential to postgres unless the credential is replaced', async () => {
        const c = await createConnection(h, { name: fresh(), ...base, protocol: 'http', credential: { kind: 'header', headerName: 'X-Key', value: 'v' } });
        const res = await api.patch(c.id, { protocol: 'postgres' });
        expect(res.status).toBe(400);
        expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['body.credential.kind']);
        const ok = await api.patch(c.id, { protocol: 'postgres', credential: { kind: 'password', username: 'u', password: 'p' } });
        expect(ok.status).toBe(200);
        expect(ok.body.credential).toEqual({ kind: 'password', username: 'u' });
      });

      it('refuses an invalid field in a patch', async () => {
        const c = await createConnection(h, { name: fresh(), ...base });
        const res = await api.patch(c.id, { port: 0 });
        expect(res.status).toBe(400);
        expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['body.port']);
      });
    });

    it('answers 404 CONNECTION_NOT_FOUND for get, patch and delete of an unknown connection', async () => {
      const responses = [
        await api.get('no-such-conn'),
        await api.patch('no-such-conn', { description: 'x' }),
        record(await h.request.delete('/api/v1/connections/no-such-conn').set(bearer(admin))),
      ];
      for (const res of responses) {
        expect(res.status).toBe(404);
        expect(res.body.code).toBe('CONNECTION_NOT_FOUND');
      }
    });
  });

  describe('list (scope=all) and delete', () => {
    it('pages with the cursor and filters by protocol and tag', async () => {
      const all: ConnectionBody[] = [];
      let cursor: string | null = null;
      do {
        const res = await api.list(`scope=all&limit=4${cursor ? `&cursor=${cursor}` : ''}`);
        all.push(...res.body.items);
        cursor = res.body.nextCursor;
      } while (cursor);
      const { rows } = await h.db.query<{ id: string }>('SELECT id FROM connections ORDER BY id');
      expect(all.map((c) => c.id)).toEqual(rows.map((r) => r.id));
      const http = await api.list('scope=all&protocol=http');
      expect(http.body.items.length).toBeGreaterThan(0);
      expect(http.body.items.every((c: ConnectionBody) => c.protocol === 'http')).toBe(true);
      const tagged = await api.list('scope=all&tag=team=payments');
      expect(tagged.body.items).toEqual([]);
      const prod = await api.list('scope=all&tag=env=prod');
      expect(prod.body.items.map((c: ConnectionBody) => c.name)).toEqual(['orders-db']);
      expect((await api.list('scope=all&tag=nokey')).status).toBe(400);
    });

    it('deletes a connection with its credential, audited', async () => {
      const c = await createConnection(h, { name: 'doomed', protocol: 'postgres', host: 'db.internal', port: 5432, credential: { kind: 'password', username: 'u', password: 'doomed-secret' } });
      const res = await h.request.delete(`/api/v1/connections/${c.id}`).set(bearer(admin));
      expect(res.status).toBe(204);
      expect((await api.get(c.id)).status).toBe(404);
      expect((await h.db.query('SELECT 1 FROM connection_credentials WHERE connection_id = $1', [c.id])).rows).toHaveLength(0);
      const { rows } = await h.db.query<{ connection_id: string }>("SELECT * FROM audit_events WHERE action = 'connection.delete' AND target_id = $1", [c.id]);
      expect(rows).toHaveLength(1);
      expect(rows[0]?.connection_id).toBe(c.id);
    });
  });

  describe('reachable connections (GET /connections as a user)', () => {
    const conns = [
      { name: 'r-dev-a', tags: { tier: 'dev', squad: 'a' } },
      { name: 'r-dev-b', tags: { tier: 'dev', squad: 'b' } },
      { name: 'r-prod-a', tags: { tier: 'prod', squad: 'a' } },
      { name: 'r-staging', tags: { tier: 'staging' } },
      { name: 'r-untagged', tags: {} },
    ];
    const allowAll = [{ effect: 'allow', type: 'all' }];

    beforeAll(async () => {
      for (const c of conns) {
        await createConnection(h, {
          name: c.name,
          protocol: c.name === 'r-staging' ? 'http' : 'postgres',
          host: `${c.name}.internal`,
          port: 6543,
          tags: c.tags,
          ...(c.name === 'r-staging' ? {} : { database: 'appdb' }),
          credential: c.name === 'r-staging' ? { kind: 'header', headerName: 'X-Key', value: 'reach-secret-hdr' } : { kind: 'password', username: 'svc', password: 'reach-secret-pw' },
        });
      }
    });

    let caseNo = 0;
    /** A fresh role with one policy bound to it, and a user holding only that role; returns the names the user sees. */
    const reachableWith = async (policy: { selector: Record<string, unknown>; rules?: unknown[]; enabled?: boolean }, qs = ''): Promise<string[]> => {
      caseNo += 1;
      const role = `reach-role-${caseNo}`;
      await createRole(h, role, []);
      await createPolicy(h, { name: `reach-pol-${caseNo}`, roles: [role], rules: allowAll, ...policy });
      const username = `reach-user-${caseNo}`;
      await createUser(h, username, [role]);
      const { token } = await h.login(username, passwordFor(username));
      const res = await h.request.get(`/api/v1/connections${qs}`).set(bearer(token));
      expect(res.status).toBe(200);
      expect(res.body.nextCursor).toBeNull();
      return res.body.items.map((c: { name: string }) => c.name);
    };

    it.each<[string, { selector: Record<string, unknown>; rules?: unknown[]; enabled?: boolean }, string[]]>([
      ['tags, match all', { selector: { match: 'all', tags: { tier: 'dev', squad: 'a' } } }, ['r-dev-a']],
      ['tags, match all (the default)', { selector: { tags: { tier: 'dev' } } }, ['r-dev-a', 'r-dev-b']],
      ['tags, match any', { selector: { match: 'any', tags: { squad: 'b', tier: 'staging' } } }, ['r-dev-b', 'r-staging']],
      ['a * tag value', { selector: { tags: { squad: '*' } } }, ['r-dev-a', 'r-dev-b', 'r-prod-a']],
      ['name', { selector: { connections: ['r-untagged', 'r-prod-a'] } }, ['r-prod-a', 'r-untagged']],
      ['name and tags', { selector: { match: 'all', tags: { tier: 'staging' }, connections: ['r-untagged'] } }, ['r-staging', 'r-untagged']],
      ['tags no connection has', { selector: { tags: { tier: 'qa' } } }, []],
      ['an empty selector', { selector: {} }, []],
      ['a disabled policy', { selector: { tags: { tier: 'dev' } }, enabled: false }, []],
      ['a deny-only policy', { selector: { tags: { tier: 'dev' } }, rules: [{ effect: 'deny', type: 'all' }] }, []],
      ['a policy that allows some SQL only', { selector: { tags: { tier: 'prod' } }, rules: [{ effect: 'allow', type: 'sql', kinds: ['select'] }, { effect: 'deny', type: 'sql', kinds: ['delete'] }] }, ['r-prod-a']],
    ])('by %s', async (_what, policy, expected) => {
      expect(await reachableWith(policy)).toEqual(expected);
    });

    it('filters the reachable list by protocol', async () => {
      expect(await reachableWith({ selector: { match: 'any', tags: { tier: 'dev', squad: '*' } }, rules: allowAll }, '?protocol=http')).toEqual([]);
      expect(await reachableWith({ selector: { match: 'any', tags: { tier: 'staging' } } }, '?protocol=http')).toEqual(['r-staging']);
    });

    it('gives nothing to a user whose roles no policy names, nor through policies bound to other roles', async () => {
      await createPolicy(h, { name: 'ops-only', roles: ['admin'], selector: { tags: { tier: 'prod' } }, rules: allowAll });
      await createUser(h, 'reach-nobody', ['user']);
      const { token } = await h.login('reach-nobody', passwordFor('reach-nobody'));
      const res = await h.request.get('/api/v1/connections').set(bearer(token));
      expect(res.body).toEqual({ items: [], nextCursor: null });
    });

    it('joins what every role of the user reaches, and shows no host, port or credential', async () => {
      await createRole(h, 'reach-x', []);
      await createRole(h, 'reach-y', []);
      await createPolicy(h, { name: 'reach-x-pol', roles: ['reach-x'], selector: { tags: { tier: 'staging' } }, rules: allowAll });
      await createPolicy(h, { name: 'reach-y-pol', roles: ['REACH-Y'], selector: { connections: ['r-dev-a'] }, rules: allowAll });
      await createUser(h, 'reach-both', ['reach-x', 'reach-y']);
      const { token } = await h.login('reach-both', passwordFor('reach-both'));
      const res = await h.request.get('/api/v1/connections').set(bearer(token));
      expect(res.status).toBe(200);
      expect(res.body.items.map((c: { name: string }) => c.name)).toEqual(['r-dev-a', 'r-staging']);
      for (const item of res.body.items) {
        expect(Object.keys(item).sort()).toEqual(['database', 'description', 'id', 'maxGrantSeconds', 'name', 'protocol', 'tags']);
      }
      expect(res.body.items[0]).toMatchObject({ name: 'r-dev-a', protocol: 'postgres', database: 'appdb', tags: { tier: 'dev', squad: 'a' }, maxGrantSeconds: 3600 });
      for (const leak of ['.internal', '6543', 'svc', 'X-Key', 'reach-secret', 'credential', 'host', 'port']) expect(res.text).not.toContain(leak);
    });
  });
});
