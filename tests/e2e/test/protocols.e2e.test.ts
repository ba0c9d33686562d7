import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import { createTestDatabase, testDatabaseUrl, type TestDatabase } from '@pa/testing';
import { ADMIN_PASSWORD, localListener, System, waitFor } from '../src';

/** HTTP and PostgreSQL through the real tunnel listener of a node registered with the real control plane. */
describe('end to end: HTTP and PostgreSQL through a node', () => {
  let sys: System;
  let admin: string;
  let user: string;
  let web: Server;
  let scratch: TestDatabase;
  const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];

  beforeAll(async () => {
    web = createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`backend saw ${req.url}`);
    });
    web.listen(0, '127.0.0.1');
    await once(web, 'listening');
    scratch = await createTestDatabase();
    const setup = new Client({ connectionString: scratch.url });
    await setup.connect();
    await setup.query('CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, $$one$$), (2, $$two$$); CREATE TABLE secrets (v text)');
    await setup.end();
    sys = await System.start(1);
    admin = await sys.login('admin', ADMIN_PASSWORD);
    const pg = new URL(testDatabaseUrl());
    await sys.api('POST', '/roles', admin, { name: 'dev', permissions: [] });
    await sys.api('POST', '/users', admin, { username: 'pat', password: 'pat-password-1234', roles: ['dev'] });
    await sys.api('POST', '/connections', admin, { name: 'web', protocol: 'http', host: '127.0.0.1', port: (web.address() as AddressInfo).port, tags: { env: 'e2e' }, credential: { kind: 'header', headerName: 'X-Api-Key', value: 'backend-api-key-never-shown' } });
    await sys.api('POST', '/connections', admin, { name: 'db', protocol: 'postgres', host: pg.hostname, port: Number(pg.port || 5432), database: scratch.name, tags: { env: 'e2e' }, credential: { kind: 'password', username: decodeURIComponent(pg.username || 'postgres'), password: decodeURIComponent(pg.password || 'unused') } });
    await sys.api('POST', '/policies', admin, {
      name: 'dev',
      roles: ['dev'],
      selector: { tags: { env: 'e2e' } },
      rules: [
        { effect: 'allow', type: 'http', methods: ['GET'], paths: ['/api/**'] },
        { effect: 'allow', type: 'sql', kinds: ['select', 'transaction'] },
        { id: 'no-secrets', effect: 'deny', type: 'sql', relations: ['secrets', '*.secrets'] },
      ],
    });
    user = await sys.login('pat', 'pat-password-1234');
  }, 60_000);
  afterAll(async () => {
    web.closeAllConnections();
    await new Promise((r) => web.close(r));
    await sys.stop();
    await scratch.drop();
  });

  it('forwards allowed HTTP requests with the credential injected and refuses the rest, all audited', async () => {
    const grant = await sys.issueGrant(user, 'web');
    const local = await localListener(grant.tunnelUrls[0] as string, grant.grantToken);
    try {
      const ok = await fetch(`http://127.0.0.1:${local.port}/api/./v1/items`);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toBe('backend saw /api/v1/items');
      expect(seen.at(-1)?.headers['x-api-key']).toBe('backend-api-key-never-shown');
      const denied = await fetch(`http://127.0.0.1:${local.port}/admin`);
      expect(denied.status).toBe(403);
      expect(((await denied.json()) as { code: string }).code).toBe('POLICY_DENIED');
      expect(seen.some((s) => s.url === '/admin')).toBe(false);
    } finally {
      await local.close();
    }
    await waitFor(async () => {
      const { rows } = await sys.query<{ outcome: string }>("SELECT outcome FROM audit_events WHERE action = 'http.request' AND grant_id = $1", [grant.grantId]);
      return rows.some((r) => r.outcome === 'allowed') && rows.some((r) => r.outcome === 'denied');
    }, 'http.request decisions in the audit trail');
    const { rows } = await sys.query<{ details: unknown }>('SELECT details FROM audit_events');
    expect(JSON.stringify(rows)).not.toContain('backend-api-key-never-shown');
  });

  it('runs allowed SQL through a real pg client and denies the rest with 42501, session usable', async () => {
    const grant = await sys.issueGrant(user, 'db');
    const local = await localListener(grant.tunnelUrls[0] as string, grant.grantToken);
    const client = new Client({ host: '127.0.0.1', port: local.port, database: scratch.name, user: 'pat', password: 'ignored' });
    try {
      await client.connect();
      expect((await client.query('SELECT name FROM items ORDER BY id')).rows).toEqual([{ name: 'one' }, { name: 'two' }]);
      await expect(client.query('SELECT 1; DROP TABLE items')).rejects.toMatchObject({ code: '42501' });
      await expect(client.query('SELECT * FROM secrets')).rejects.toMatchObject({ code: '42501' });
      expect((await client.query({ text: 'SELECT name FROM items WHERE id = $1', values: [2] })).rows).toEqual([{ name: 'two' }]);
    } finally {
      await client.end().catch(() => undefined);
      await local.close();
    }
    const check = new Client({ connectionString: scratch.url });
    await check.connect();
    expect((await check.query('SELECT count(*)::int AS n FROM items')).rows[0]).toEqual({ n: 2 });
    await check.end();
    await waitFor(async () => {
      const { rows } = await sys.query<{ outcome: string }>("SELECT outcome FROM audit_events WHERE action = 'sql.statement' AND grant_id = $1", [grant.grantId]);
      return rows.filter((r) => r.outcome === 'denied').length >= 2 && rows.some((r) => r.outcome === 'allowed');
    }, 'sql.statement decisions in the audit trail');
  });
});
