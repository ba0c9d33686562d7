/**
 * TLS from the real `pa` process: the REST API over https://, the grant
 * service over gRPC with TLS, and tunnels to https:// nodes, trusting the
 * built-in CAs plus a CA file (`--ca-file`, PA_CA_FILE, or the one `pa login
 * --ca-file` keeps in the context). Fakes of the control plane, the grant
 * service and a node serve certificates from a throwaway test CA.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createTestPki, type TestCa, type TestCertificate, type TestPki } from '@pa/testing';
import { ConfigStore } from '../store/config-file';
import { FakeControlPlane } from '../testing/fake-control-plane';
import { FakeGrantService } from '../testing/fake-grant-service';
import { FakeTunnelNode } from '../testing/fake-tunnel-node';
import { makeConfigDir, runPa, seedLogin, startCli, type CliProcess } from '../testing/run-cli';

jest.setTimeout(120_000);

let pki: TestPki;
let ca: TestCa;
let otherCa: TestCa;
/** Certificates for 127.0.0.1, signed by the test CA and by another one. */
let trusted: TestCertificate;
let untrusted: TestCertificate;

beforeAll(() => {
  pki = createTestPki();
  ca = pki.ca('pa private CA');
  otherCa = pki.ca('pa unknown CA');
  trusted = pki.issue(ca, 'pa.test', { dns: ['localhost'], ips: ['127.0.0.1'] });
  untrusted = pki.issue(otherCa, 'node.test', { dns: ['localhost'], ips: ['127.0.0.1'] });
});
afterAll(() => pki.cleanup());

let cleanups: Array<() => Promise<void> | void> = [];
let running: CliProcess[] = [];
afterEach(async () => {
  for (const p of running) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  running = [];
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** A fake deployment: REST (http or https), grant service (TLS or not) and one node (https or http), plus a logged-in config dir. */
const deploy = async (o: { rest?: TestCertificate; grants?: TestCertificate; node?: TestCertificate; login?: boolean }) => {
  const cp = await FakeControlPlane.start(o.rest ? { tls: o.rest } : {});
  const grants = await FakeGrantService.start(cp, o.grants ? { tls: o.grants } : {});
  const node = await FakeTunnelNode.start(o.node ? { tls: o.node } : {});
  cp.grpc = { url: grants.address, tls: Boolean(o.grants) };
  grants.tunnelUrls = [node.url];
  const cfg = makeConfigDir();
  cleanups.push(() => cfg.cleanup(), () => cp.close(), () => grants.close(), () => node.close());
  if (o.login !== false) await seedLogin(cfg.dir, cp.url);
  return { cp, grants, node, dir: cfg.dir };
};

const paConnect = (dir: string, args: string[], env: Record<string, string> = {}): CliProcess => {
  const p = startCli(['connect', ...args], { configDir: dir, env });
  running.push(p);
  return p;
};
const portOf = async (p: CliProcess): Promise<number> => Number((await p.waitFor(/ on 127\.0\.0\.1:(\d+)\./))[1]);

/** Sends `text` through the local port and expects it echoed back by the node. */
const echo = async (port: number, text: string): Promise<void> => {
  const s = connect({ host: '127.0.0.1', port });
  await once(s, 'connect');
  s.write(text);
  let got = '';
  while (got.length < text.length) got += String(((await once(s, 'data')) as [Buffer])[0]);
  expect(got).toBe(text);
  s.destroy();
};

/** Opens a local connection and resolves when pa closes it (the tunnel could not be opened). */
const refusedLocally = async (port: number): Promise<void> => {
  const s: Socket = connect({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  await once(s, 'close');
};

describe('pa connect over TLS', () => {
  it('gets the grant over gRPC TLS and tunnels over https://, trusting --ca-file besides the built-in CAs', async () => {
    const d = await deploy({ grants: trusted, node: trusted });
    const p = paConnect(d.dir, ['echo', '--ca-file', ca.certFile]);
    const port = await portOf(p);
    await echo(port, 'through TLS');
    await p.waitFor(/#1 opened from 127\.0\.0\.1:\d+ via https:\/\/127\.0\.0\.1:\d+/, 'stderr');
    expect(d.grants.calls.map((c) => c.method)).toEqual(['issueGrant']);
    p.child.kill('SIGINT');
    expect((await p.exited).code).toBe(0);
  });

  it('takes the CA file from PA_CA_FILE too', async () => {
    const d = await deploy({ grants: trusted, node: trusted });
    const p = paConnect(d.dir, ['echo'], { PA_CA_FILE: ca.certFile });
    await echo(await portOf(p), 'via PA_CA_FILE');
    p.child.kill('SIGINT');
    expect((await p.exited).code).toBe(0);
  });

  it('says what to do when the grant service has a certificate pa does not trust (exit 5)', async () => {
    const d = await deploy({ grants: trusted, node: trusted });
    const r = await runPa(['connect', 'echo'], { configDir: d.dir });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(
      /^pa: cannot connect to the grant service at localhost:\d+ securely: certificate verification failed: the server certificate is not signed by a CA this client trusts \([A-Z_]+\); if a private CA signs it, pass --ca-file FILE \(or set PA_CA_FILE; `pa login --ca-file FILE` keeps it for the context\)\n$/,
    );
    expect(d.grants.calls).toEqual([]);
  });

  it('reports a node whose certificate pa does not trust on each local connection, and keeps listening', async () => {
    const d = await deploy({ node: untrusted });
    const p = paConnect(d.dir, ['echo', '--ca-file', ca.certFile]);
    const port = await portOf(p);
    await refusedLocally(port);
    const [line] = await p.waitFor(/#1 could not open a tunnel: .*\n/, 'stderr');
    expect(line).toMatch(/https:\/\/127\.0\.0\.1:\d+: certificate verification failed: the server certificate is not signed by a CA this client trusts \([A-Z_]+\); if a private CA signs it, pass --ca-file FILE/);
    expect(d.node.grants).toEqual([]);
    expect(p.child.exitCode).toBeNull();
    p.child.kill('SIGINT');
    expect((await p.exited).code).toBe(0);
  });

  it('refuses a CA file it cannot read or that holds no certificate, naming where it came from', async () => {
    const d = await deploy({ grants: trusted, node: trusted });
    const missing = join(pki.dir, 'missing.pem');
    const r1 = await runPa(['connect', 'echo', '--ca-file', missing], { configDir: d.dir });
    expect([r1.code, r1.stderr]).toEqual([1, `pa: cannot read the CA file ${missing} (--ca-file): ENOENT\n`]);
    const junk = pki.file('junk.pem', 'not a certificate\n');
    const r2 = await runPa(['list'], { configDir: d.dir, env: { PA_CA_FILE: junk } });
    expect([r2.code, r2.stderr]).toEqual([1, `pa: the CA file ${junk} (PA_CA_FILE) holds no PEM certificate ("-----BEGIN CERTIFICATE-----")\n`]);
  });
});

describe('pa login --ca-file', () => {
  it('logs in to an https:// control plane, keeps the CA file in the context, and uses it for later commands and tunnels', async () => {
    const d = await deploy({ rest: trusted, grants: trusted, node: trusted, login: false });
    const login = await runPa(['login', '--server', d.cp.url, '-u', 'alice', '--password-stdin', '--ca-file', ca.certFile], { configDir: d.dir, input: 'alice-password-1\n' });
    expect(login.code).toBe(0);
    expect(login.stderr).toContain(`TLS: trusting the CAs in ${ca.certFile} for this context, besides the built-in ones.`);
    const config = new ConfigStore(d.dir).read();
    expect(config.contexts[config.currentContext ?? '']?.caFile).toBe(ca.certFile);
    const list = await runPa(['list', '-q'], { configDir: d.dir });
    expect([list.code, list.stdout]).toEqual([0, 'reports-db\nwiki\necho\n']);
    const p = paConnect(d.dir, ['echo']);
    await echo(await portOf(p), 'context CA');
    p.child.kill('SIGINT');
    expect((await p.exited).code).toBe(0);
  });

  it('says what to do when the control plane has a certificate pa does not trust (exit 5)', async () => {
    const d = await deploy({ rest: trusted, login: false });
    const r = await runPa(['login', '--server', d.cp.url, '-u', 'alice', '--password-stdin'], { configDir: d.dir, input: 'alice-password-1\n' });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(
      new RegExp(`^pa: cannot connect to ${d.cp.url.replace(/[.]/g, '\\.')} securely: certificate verification failed: the server certificate is not signed by a CA this client trusts \\([A-Z_]+\\); if a private CA signs it, pass --ca-file FILE`),
    );
    expect(d.cp.requests).toEqual([]);
  });
});
