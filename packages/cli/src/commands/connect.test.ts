/**
 * `pa connect`, run as the real CLI process against a fake control plane
 * (REST), a fake GrantService (gRPC) and a fake data-plane node that echoes
 * — all on real sockets — with real local TCP clients.
 */
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { FakeControlPlane } from '../testing/fake-control-plane';
import { FakeGrantService } from '../testing/fake-grant-service';
import { FakeTunnelNode } from '../testing/fake-tunnel-node';
import { makeConfigDir, runPa, seedLogin, startCli, type CliProcess } from '../testing/run-cli';

jest.setTimeout(120_000);

let cp: FakeControlPlane;
let grants: FakeGrantService;
let node: FakeTunnelNode;
let cfg: { dir: string; cleanup: () => void };
let running: CliProcess[] = [];

beforeEach(async () => {
  cp = await FakeControlPlane.start();
  grants = await FakeGrantService.start(cp);
  node = await FakeTunnelNode.start();
  cp.grpc = { url: grants.address, tls: false };
  grants.tunnelUrls = [node.url];
  cfg = makeConfigDir();
  await seedLogin(cfg.dir, cp.url);
});
afterEach(async () => {
  for (const p of running) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  running = [];
  await Promise.all([cp.close(), grants.close(), node.close()]);
  cfg.cleanup();
});

const paConnect = (args: string[]): CliProcess => {
  const p = startCli(['connect', ...args], { configDir: cfg.dir });
  running.push(p);
  return p;
};
const portOf = async (p: CliProcess): Promise<number> => {
  await p.waitFor(/Press Ctrl-C to disconnect\.\n/);
  return Number((await p.waitFor(/ on 127\.0\.0\.1:(\d+)\./))[1]);
};

/** Writes `text` to a fresh local connection and reads it back. */
const echo = async (port: number, text: string): Promise<Socket> => {
  const s = connect({ host: '127.0.0.1', port });
  await once(s, 'connect');
  s.write(text);
  let got = '';
  while (got.length < text.length) got += String(((await once(s, 'data')) as [Buffer])[0]);
  expect(got).toBe(text);
  return s;
};
const closed = (s: Socket): Promise<unknown> => (s.closed ? Promise.resolve() : once(s, 'close'));
const freePort = async (): Promise<number> => {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
};
const accessToken = (): string => {
  const last = cp.requests.filter((r) => r.headers.authorization).at(-1);
  return String(last?.headers.authorization);
};

describe('pa connect', () => {
  it('gets a grant, prints the psql line, listens on 127.0.0.1 only, relays bytes, shows in status, and stops cleanly on SIGINT', async () => {
    const p = paConnect(['reports-db']);
    const port = await portOf(p);
    expect(p.stdout()).toBe(
      [
        `Connected to reports-db (postgres) on 127.0.0.1:${port}.`,
        `  psql "host=127.0.0.1 port=${port} dbname=reports user=alice sslmode=disable"`,
        '  (no password needed: your grant authenticates you)',
        'Grant grt_1 is renewed automatically. Press Ctrl-C to disconnect.',
        '',
      ].join('\n'),
    );
    expect(grants.calls).toEqual([{ method: 'issueGrant', authorization: accessToken(), request: { connectionName: 'reports-db', requestedTtlSeconds: 0 } }]);

    const a = await echo(port, 'SELECT 1;');
    const b = await echo(port, 'second connection');
    expect(node.grants).toEqual([grants.issuedTokens[0], grants.issuedTokens[0]]);
    await p.waitFor(/#2 opened from 127\.0\.0\.1:\d+ via http:\/\/127\.0\.0\.1:\d+/, 'stderr');

    // Nothing answers on the machine's other addresses.
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal);
    if (external) {
      const s = connect({ host: external.address, port });
      const [err] = (await once(s, 'error')) as [NodeJS.ErrnoException];
      expect(err.code).toBe('ECONNREFUSED');
    }

    const status = await runPa(['status', '--json'], { configDir: cfg.dir });
    expect(JSON.parse(status.stdout).tunnels).toEqual([expect.objectContaining({ pid: p.child.pid, connection: 'reports-db', protocol: 'postgres', address: '127.0.0.1', port })]);

    p.child.kill('SIGINT');
    const result = await p.exited;
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('Disconnected from reports-db.');
    await Promise.all([closed(a), closed(b)]);
    const after = await runPa(['status', '--json'], { configDir: cfg.dir });
    expect(JSON.parse(after.stdout).tunnels).toEqual([]);
  });

  it('uses --port and --ttl, and prints curl for http and nc for tcp', async () => {
    const port = await freePort();
    const http = paConnect(['wiki', '--port', String(port), '--ttl', '600']);
    await http.waitFor(/Press Ctrl-C/);
    expect(http.stdout()).toContain(`Connected to wiki (http) on 127.0.0.1:${port}.\n  curl http://127.0.0.1:${port}/\n`);
    expect(grants.calls[0]?.request).toEqual({ connectionName: 'wiki', requestedTtlSeconds: 600 });
    const busy = await runPa(['connect', 'echo', '--port', String(port)], { configDir: cfg.dir });
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(`port ${port} is already in use on 127.0.0.1`);
    http.child.kill('SIGTERM');
    expect((await http.exited).code).toBe(0);

    const tcp = paConnect(['echo']);
    const tcpPort = await portOf(tcp);
    expect(tcp.stdout()).toContain(`  nc 127.0.0.1 ${tcpPort}\n`);
    tcp.child.kill('SIGINT');
    await tcp.exited;
  });

  it('refuses to listen anywhere but the loopback interface, before asking for a grant', async () => {
    const r = await runPa(['connect', 'reports-db', '--address', '0.0.0.0'], { configDir: cfg.dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('pa: refusing to listen on 0.0.0.0: pa connect listens on the loopback interface only (127.0.0.1), so nobody else can use your grant\n');
    expect(grants.calls).toEqual([]);
  });

  it('suggests `pa list` for an unknown connection (exit 4) and reports a refused grant (exit 3)', async () => {
    const unknown = await runPa(['connect', 'reprots-db'], { configDir: cfg.dir });
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toBe('pa: unknown connection "reprots-db" (did you mean reports-db?): run `pa list` to see what you may reach\n');
    grants.issueFailure = { grpcCode: GrpcStatus.PERMISSION_DENIED, code: 'POLICY_DENIED', message: 'No policy lets you reach reports-db.' };
    const denied = await runPa(['connect', 'reports-db'], { configDir: cfg.dir });
    expect(denied.code).toBe(3);
    expect(denied.stderr).toBe('pa: permission denied: you may not reach reports-db (No policy lets you reach reports-db.)\n');
  });

  it('says when the grant service cannot be reached (exit 5)', async () => {
    await grants.close();
    const r = await runPa(['connect', 'reports-db'], { configDir: cfg.dir });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(`pa: cannot reach the grant service at ${grants.address}: is the control plane running?`);
  });

  it('renews the grant at renew_at and uses the new grant for the next tunnel', async () => {
    grants.renewAfterMs = 1500;
    const p = paConnect(['reports-db']);
    const port = await portOf(p);
    (await echo(port, 'before')).destroy();
    await p.waitFor(/grant renewed \(grt_2\), valid until/, 'stderr');
    const renew = grants.calls.find((c) => c.method === 'renewGrant');
    expect(renew?.request).toEqual({ current: { $case: 'grantId', grantId: 'grt_1' }, requestedTtlSeconds: 0 });
    expect(renew?.authorization).toMatch(/^Bearer at_/);
    (await echo(port, 'after')).destroy();
    expect(node.grants).toEqual([grants.issuedTokens[0], grants.issuedTokens[1]]);
    p.child.kill('SIGINT');
    expect((await p.exited).code).toBe(0);
  });

  it('retries a failed renewal with backoff, and refreshes an expired access token on the way', async () => {
    grants.renewAfterMs = 1000;
    grants.renewFailure = { grpcCode: GrpcStatus.UNAVAILABLE, code: 'DATABASE_UNAVAILABLE', message: 'The database is unavailable.' };
    const p = paConnect(['reports-db']);
    await p.waitFor(/could not renew the grant \(The database is unavailable\. \(DATABASE_UNAVAILABLE\)\); retrying in 1s/, 'stderr');
    grants.renewFailure = null;
    cp.expireAccessTokens();
    await p.waitFor(/grant renewed \(grt_2\)/, 'stderr');
    expect(cp.refreshes).toBe(1);
    const renewals = grants.calls.filter((c) => c.method === 'renewGrant');
    // The last renewal carried the refreshed token.
    expect(renewals.at(-1)?.authorization).not.toBe(renewals[0]?.authorization);
    p.child.kill('SIGINT');
    expect((await p.exited).code).toBe(0);
  });

  it('closes every tunnel and exits 3 when renewal is refused as revoked', async () => {
    grants.renewAfterMs = 1500;
    grants.renewFailure = { grpcCode: GrpcStatus.UNAUTHENTICATED, code: 'GRANT_REVOKED', message: 'The grant has been revoked by an administrator.' };
    const p = paConnect(['reports-db']);
    const port = await portOf(p);
    const open = await echo(port, 'working');
    const result = await p.exited;
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('pa: access to reports-db was revoked: The grant has been revoked by an administrator. (GRANT_REVOKED)\n');
    await closed(open);
    const s = connect({ host: '127.0.0.1', port });
    const [err] = (await once(s, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
    expect(grants.calls.filter((c) => c.method === 'renewGrant')).toHaveLength(1);
  });

  it('exits 3 at once, not at the next renewal, when a node closes its tunnels and says the grant is revoked', async () => {
    // Renewal is 40 s away: only the node's word can end it sooner.
    const p = paConnect(['reports-db']);
    const port = await portOf(p);
    const open = await echo(port, 'working');
    grants.renewFailure = { grpcCode: GrpcStatus.UNAUTHENTICATED, code: 'GRANT_REVOKED', message: 'The grant has been revoked by an administrator.' };
    node.refuse = { code: 'GRANT_REVOKED', message: 'The grant has been revoked.' };
    const t0 = Date.now();
    node.dropTunnels(); // what a node does to a revoked grant's live tunnels
    const result = await p.exited;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('pa: access to reports-db was revoked: The grant has been revoked by an administrator. (GRANT_REVOKED)\n');
    expect(node.statusChecks).toHaveLength(1);
    expect(grants.calls.filter((c) => c.method === 'renewGrant')).toHaveLength(1);
    await closed(open);
  });

  it('exits 3 within seconds of a revocation with no tunnel open: it asks the node every --check-every seconds', async () => {
    const p = paConnect(['reports-db', '--check-every', '1']);
    await portOf(p);
    // While access stands, the checks change nothing.
    const before = Date.now();
    while (node.statusChecks.length < 2 && Date.now() - before < 10_000) await new Promise((r) => setImmediate(r));
    expect(node.statusChecks.length).toBeGreaterThanOrEqual(2);
    expect(grants.calls.filter((c) => c.method === 'renewGrant')).toHaveLength(0);
    expect(p.child.exitCode).toBeNull();
    grants.renewFailure = { grpcCode: GrpcStatus.UNAUTHENTICATED, code: 'GRANT_REVOKED', message: 'The grant has been revoked by an administrator.' };
    node.refuse = { code: 'GRANT_REVOKED', message: 'The grant has been revoked.' };
    const t0 = Date.now();
    const result = await p.exited;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('pa: access to reports-db was revoked: The grant has been revoked by an administrator. (GRANT_REVOKED)\n');
    expect(grants.calls.filter((c) => c.method === 'renewGrant')).toHaveLength(1);
  });

  it('refuses a negative --check-every with a usage error', async () => {
    const r = await runPa(['connect', 'reports-db', '--check-every', '-1'], { configDir: cfg.dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('pa: --check-every must be a number of seconds (0 turns the periodic check off)\nSee `pa connect --help`.');
  });

  it('exits 3 at once when a node refuses a new tunnel as revoked and the control plane will not renew', async () => {
    const p = paConnect(['reports-db']);
    const port = await portOf(p);
    grants.renewFailure = { grpcCode: GrpcStatus.UNAUTHENTICATED, code: 'GRANT_REVOKED', message: 'Access was revoked.' };
    node.refuse = { code: 'AUTH_SESSION_REVOKED', message: 'The session has been revoked.' };
    await closed(connect({ host: '127.0.0.1', port }));
    const result = await p.exited;
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/#1 refused by the data plane: The session has been revoked\. \(AUTH_SESSION_REVOKED\)/);
    expect(result.stderr).toContain('pa: access to reports-db was revoked: Access was revoked. (GRANT_REVOKED)\n');
  });

  it('asks the node, and keeps serving, when a tunnel it closed was not a revocation', async () => {
    const p = paConnect(['echo']);
    const port = await portOf(p);
    const live = await echo(port, 'one');
    node.dropTunnels(); // a backend that hung up, a node restart…
    await closed(live);
    await p.waitFor(/#1 closed/, 'stderr');
    const before = Date.now();
    while (node.statusChecks.length === 0 && Date.now() - before < 5_000) await new Promise((r) => setImmediate(r));
    expect(node.statusChecks).toHaveLength(1);
    (await echo(port, 'two')).destroy();
    expect(grants.calls.filter((c) => c.method === 'renewGrant')).toHaveLength(0);
    expect(p.child.exitCode).toBeNull();
    p.child.kill('SIGINT');
    expect((await p.exited).code).toBe(0);
  });

  it('reports a tunnel the node refuses and keeps serving; a dropped tunnel closes its connection, the next one works', async () => {
    const p = paConnect(['echo']);
    const port = await portOf(p);
    node.refuse = { code: 'GRANT_REVOKED', message: 'The grant has been revoked.' };
    const refused = connect({ host: '127.0.0.1', port });
    await closed(refused);
    await p.waitFor(/#1 refused by the data plane: The grant has been revoked\. \(GRANT_REVOKED\)/, 'stderr');
    node.refuse = null;
    const live = await echo(port, 'one');
    node.dropTunnels(); // as a node restart would
    await closed(live);
    (await echo(port, 'two')).destroy();
    expect(p.child.exitCode).toBeNull();
    p.child.kill('SIGINT');
    expect((await p.exited).code).toBe(0);
  });
});
