import { once } from 'node:events';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { ADMIN_PASSWORD, PaUser, roundTrip, startEchoServer, System, waitFor } from '../src';

/** The real `pa` CLI against the real control plane, two nodes, PostgreSQL and Redis. */
describe('end to end with the pa CLI', () => {
  let sys: System;
  let admin: string;
  let echo: Awaited<ReturnType<typeof startEchoServer>>;
  const olga = new PaUser();

  beforeAll(async () => {
    echo = await startEchoServer();
    sys = await System.start(2);
    admin = await sys.login('admin', ADMIN_PASSWORD);
    await sys.api('POST', '/roles', admin, { name: 'ops', permissions: [] });
    await sys.api('POST', '/users', admin, { username: 'olga', password: 'olga-password-123', roles: ['ops'] });
    await sys.api('POST', '/connections', admin, { name: 'echo', protocol: 'tcp', host: '127.0.0.1', port: echo.port, description: 'echo service', tags: { env: 'e2e' }, maxGrantSeconds: 600 });
    await sys.api('POST', '/policies', admin, { name: 'ops', roles: ['ops'], selector: { tags: { env: 'e2e' } }, rules: [{ effect: 'allow', type: 'all' }] });
  }, 60_000);
  afterAll(async () => {
    olga.cleanup();
    await echo.close();
    await sys.stop();
  });

  it('logs in with --password-stdin, keeps tokens in a 0600 file, and lists what the user may reach', async () => {
    const login = await olga.run(['login', '--server', sys.cp.url, '--username', 'olga', '--password-stdin'], 'olga-password-123\n');
    expect(login.code).toBe(0);
    expect(login.stdout).toContain('olga');
    expect(statSync(join(olga.dir, 'config.json')).mode & 0o777).toBe(0o600);
    const list = await olga.run(['list', '--json']);
    expect(list.code).toBe(0);
    const items = JSON.parse(list.stdout) as Array<{ name: string }>;
    expect(items.map((c) => c.name)).toEqual(['echo']);
    const wrong = await new PaUser().run(['login', '--server', sys.cp.url, '--username', 'olga', '--password-stdin'], 'wrong-password-1\n');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr.toLowerCase()).toContain('password');
  }, 120_000);

  it('connects: listens on 127.0.0.1, relays through a node, renews silently, and exits when access is revoked', async () => {
    const p = olga.start(['connect', 'echo', '--ttl', '30']);
    const [, port] = await p.waitFor(/Connected to echo \(tcp\) on 127\.0\.0\.1:(\d+)/);
    expect(p.stdout()).toContain(`nc 127.0.0.1 ${port}`);
    expect(await roundTrip(Number(port), 'through the tunnel')).toBe('through the tunnel');
    // The grant lives 30 s; the CLI renews it at two thirds, silently.
    await p.waitFor(/grant renewed \(grt_[0-9a-z]+\)/, 'stderr', 60_000);
    expect(await roundTrip(Number(port), 'after renewal')).toBe('after renewal');
    await waitFor(async () => {
      const { rows } = await sys.query<{ n: string }>("SELECT count(*) AS n FROM audit_events WHERE action = 'grant.renew' AND outcome = 'success' AND actor_name = 'olga'");
      return Number(rows[0]?.n) >= 1;
    }, 'grant.renew audited');
    // An admin revokes the active grant while a tunnel is open. The node closes that tunnel, the CLI asks the
    // node about its grant (revoked), the control plane refuses to renew it, and the CLI exits with code 3 —
    // seconds after the revocation, not at its next renewal (about 20 s after the last one).
    const live = connect({ port: Number(port), host: '127.0.0.1' });
    await once(live, 'connect');
    live.write('held open');
    await once(live, 'data');
    const grants = await sys.api('GET', '/grants?user=olga&active=true', admin);
    const active = (grants.body.items as Array<{ id: string }>).at(-1);
    expect(active).toBeDefined();
    const renewalsBefore = (p.stderr().match(/grant renewed/g) ?? []).length;
    const t0 = Date.now();
    await sys.api('POST', `/grants/${active?.id}/revoke`, admin, { reason: 'e2e: access revoked' });
    const code = await Promise.race([p.exited, new Promise<number>((r) => setTimeout(() => r(-1), 60_000))]);
    if (code === -1) p.child.kill('SIGINT');
    expect(code).toBe(3);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((p.stderr().match(/grant renewed/g) ?? []).length).toBe(renewalsBefore);
    expect(p.stderr()).toMatch(/access to echo was revoked/);
    await (live.closed ? Promise.resolve() : once(live, 'close'));
  }, 180_000);

  it('says what to do when the session is gone', async () => {
    const u = new PaUser();
    try {
      const res = await u.run(['list']);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/pa login/);
    } finally {
      u.cleanup();
    }
  }, 60_000);
});
