import { once } from 'node:events';
import { openTunnel, TunnelRefusedError } from '@pa/tunnel';
import { ADMIN_PASSWORD, exchange, startEchoServer, System, waitFor } from '../src';

/**
 * The real control plane, two data-plane nodes, PostgreSQL and Redis, driven
 * the way the CLI drives them: login over REST, grants over gRPC, tunnels.
 */
describe('end to end: control plane, two nodes, PostgreSQL, Redis', () => {
  let sys: System;
  let admin: string;
  let echo: Awaited<ReturnType<typeof startEchoServer>>;
  let echoPort: number;

  beforeAll(async () => {
    echo = await startEchoServer();
    echoPort = echo.port;
    sys = await System.start(2);
    admin = await sys.login('admin', ADMIN_PASSWORD);
    const ok = (r: { status: number; body: unknown }) => {
      if (r.status >= 300) throw new Error(JSON.stringify(r.body));
    };
    ok(await sys.api('POST', '/roles', admin, { name: 'ops', permissions: [] }));
    ok(await sys.api('POST', '/users', admin, { username: 'olga', password: 'olga-password-123', roles: ['ops'] }));
    ok(await sys.api('POST', '/connections', admin, { name: 'echo', protocol: 'tcp', host: '127.0.0.1', port: echoPort, tags: { env: 'e2e' } }));
    ok(await sys.api('POST', '/connections', admin, { name: 'other', protocol: 'tcp', host: '127.0.0.1', port: echoPort, tags: { env: 'secret' } }));
    ok(await sys.api('POST', '/policies', admin, { name: 'ops-e2e', roles: ['ops'], selector: { tags: { env: 'e2e' } }, rules: [{ effect: 'allow', type: 'all' }] }));
  }, 60_000);
  afterAll(async () => {
    await echo.close();
    await sys.stop();
  });

  it('issues a grant listing both nodes, and both nodes relay under it', async () => {
    const olga = await sys.login('olga', 'olga-password-123');
    const grant = await sys.issueGrant(olga, 'echo');
    expect(new Set(grant.tunnelUrls)).toEqual(new Set(sys.nodes.map((n) => n.tunnelUrl)));
    for (const url of grant.tunnelUrls) {
      const { socket } = await openTunnel({ url, grant: grant.grantToken });
      expect(await exchange(socket, `hello ${url}`)).toBe(`hello ${url}`);
      socket.destroy();
    }
    // Audit from both nodes reaches PostgreSQL through NodeService.IngestAudit.
    await waitFor(async () => {
      const { rows } = await sys.query<{ node_id: string }>("SELECT DISTINCT node_id FROM audit_events WHERE action = 'session.start' AND grant_id = $1", [grant.grantId]);
      return rows.length === 2;
    }, 'session.start from both nodes');
  });

  it('refuses a grant for a connection no policy allows, as if it did not exist', async () => {
    const olga = await sys.login('olga', 'olga-password-123');
    await expect(sys.issueGrant(olga, 'other')).rejects.toMatchObject({ code: 5 });
    await expect(sys.issueGrant(olga, 'nonexistent')).rejects.toMatchObject({ code: 5 });
  });

  it('closes live tunnels on both nodes within seconds when an admin revokes the grant', async () => {
    const olga = await sys.login('olga', 'olga-password-123');
    const grant = await sys.issueGrant(olga, 'echo');
    const tunnels = await Promise.all(sys.nodes.map((n) => openTunnel({ url: n.tunnelUrl, grant: grant.grantToken })));
    for (const t of tunnels) expect(await exchange(t.socket, 'x')).toBe('x');
    const closed = tunnels.map((t) => once(t.socket, 'close'));
    const t0 = Date.now();
    expect((await sys.api('POST', `/grants/${grant.grantId}/revoke`, admin, { reason: 'e2e revocation' })).status).toBe(200);
    await Promise.all(closed);
    expect(Date.now() - t0).toBeLessThan(2000);
    for (const n of sys.nodes) {
      const err = await openTunnel({ url: n.tunnelUrl, grant: grant.grantToken }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TunnelRefusedError);
      expect((err as TunnelRefusedError).code).toBe('AUTH_SESSION_REVOKED');
    }
  });

  it('ends grant sessions when the user is disabled, on every node', async () => {
    const created = await sys.api('POST', '/users', admin, { username: 'dave', password: 'dave-password-123', roles: ['ops'] });
    const dave = await sys.login('dave', 'dave-password-123');
    const grant = await sys.issueGrant(dave, 'echo');
    const tunnels = await Promise.all(sys.nodes.map((n) => openTunnel({ url: n.tunnelUrl, grant: grant.grantToken })));
    const closed = tunnels.map((t) => once(t.socket, 'close'));
    expect((await sys.api('PATCH', `/users/${String(created.body.id)}`, admin, { disabled: true })).status).toBe(200);
    await Promise.all(closed);
  });

  it('closes the tunnels of a connection when an admin deletes it', async () => {
    await sys.api('POST', '/connections', admin, { name: 'temp', protocol: 'tcp', host: '127.0.0.1', port: echoPort, tags: { env: 'e2e' } });
    const olga = await sys.login('olga', 'olga-password-123');
    const grant = await sys.issueGrant(olga, 'temp');
    const { socket } = await openTunnel({ url: grant.tunnelUrls[0] as string, grant: grant.grantToken });
    expect(await exchange(socket, 'y')).toBe('y');
    const closed = once(socket, 'close');
    expect((await sys.api('DELETE', '/connections/temp', admin)).status).toBe(204);
    await closed;
    const err = await openTunnel({ url: grant.tunnelUrls[0] as string, grant: grant.grantToken }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TunnelRefusedError);
  });

  it('keeps unexpired grants working while the control plane is down, and ships the audit spooled meanwhile exactly once', async () => {
    const olga = await sys.login('olga', 'olga-password-123');
    const grant = await sys.issueGrant(olga, 'echo');
    const port = sys.grpcPort;
    await sys.cp.stop();
    const node = sys.nodes[0] as (typeof sys.nodes)[number];
    // New tunnels still open and relay: verification is local.
    for (let i = 0; i < 3; i += 1) {
      const { socket } = await openTunnel({ url: node.tunnelUrl, grant: grant.grantToken });
      expect(await exchange(socket, `during outage ${i}`)).toBe(`during outage ${i}`);
      socket.end();
      await once(socket, 'close');
    }
    await sys.startControlPlane(port);
    await waitFor(async () => {
      const { rows } = await sys.query<{ n: string }>("SELECT count(*) AS n FROM audit_events WHERE grant_id = $1 AND action = 'session.end'", [grant.grantId]);
      return Number(rows[0]?.n) === 3;
    }, 'the three session.end events spooled during the outage', 30_000);
    const { rows } = await sys.query<{ id: string; n: string }>('SELECT id, count(*) OVER (PARTITION BY id) AS n FROM audit_events WHERE grant_id = $1', [grant.grantId]);
    expect(rows.every((r) => Number(r.n) === 1)).toBe(true);
    const fromNodes = await sys.query<{ n: string }>('SELECT count(*) AS n FROM audit_events WHERE grant_id = $1 AND node_id IS NOT NULL', [grant.grantId]);
    expect(Number(fromNodes.rows[0]?.n)).toBe(9); // tunnel.open, session.start, session.end × 3
  }, 60_000);
});
