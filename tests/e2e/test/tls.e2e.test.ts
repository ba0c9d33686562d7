import { once } from 'node:events';
import { connect } from 'node:net';
import { createTestPki, type TestCa, type TestCertificate, type TestPki } from '@pa/testing';
import { ADMIN_PASSWORD, PaUser, roundTrip, startEchoServer, System, waitFor } from '../src';

/**
 * TLS on every hop that leaves a machine, with the real parts: the control
 * plane serves gRPC with TLS and requires a client certificate from nodes
 * (mutual TLS, bound to the node id, plus the node token); nodes verify it
 * against its CA and serve tunnels over HTTPS; the real `pa` trusts a private
 * CA through `--ca-file`. Certificates come from a throwaway test PKI.
 */
describe('end to end over TLS', () => {
  let pki: TestPki;
  /** Signs the control plane's gRPC certificate; signs nodes' client certificates; signs tunnel certificates; signs nothing we trust. */
  let cpCa: TestCa;
  let nodeCa: TestCa;
  let tunnelCa: TestCa;
  let otherCa: TestCa;
  let bundle: string;
  const clientCerts = new Map<string, TestCertificate>();
  let sys: System;
  let echo: Awaited<ReturnType<typeof startEchoServer>> | undefined;
  const users: PaUser[] = [];

  /** A node's environment: trust the control plane's CA, present its client certificate, serve tunnels with TLS. */
  const nodeEnv = (nodeId: string): Record<string, string> => {
    let client = clientCerts.get(nodeId);
    if (!client) {
      client = pki.issue(nodeCa, nodeId, { usage: 'client' });
      clientCerts.set(nodeId, client);
    }
    const tunnel = pki.issue(tunnelCa, `${nodeId}.tunnel`, { ips: ['127.0.0.1'] });
    return {
      PA_CONTROL_PLANE_TLS_CA_FILE: cpCa.certFile,
      PA_CONTROL_PLANE_TLS_CERT_FILE: client.certFile,
      PA_CONTROL_PLANE_TLS_KEY_FILE: client.keyFile,
      PA_TUNNEL_TLS_CERT_FILE: tunnel.certFile,
      PA_TUNNEL_TLS_KEY_FILE: tunnel.keyFile,
    };
  };

  beforeAll(async () => {
    pki = createTestPki();
    cpCa = pki.ca('pa e2e control-plane CA');
    nodeCa = pki.ca('pa e2e node CA');
    tunnelCa = pki.ca('pa e2e tunnel CA');
    otherCa = pki.ca('pa e2e other CA');
    bundle = pki.file('bundle.pem', `${cpCa.cert}${tunnelCa.cert}`);
    const cpCert = pki.issue(cpCa, 'localhost', { dns: ['localhost'], ips: ['127.0.0.1'] });
    echo = await startEchoServer();
    sys = await System.start(2, {
      cpEnv: { PA_GRPC_TLS_CERT_FILE: cpCert.certFile, PA_GRPC_TLS_KEY_FILE: cpCert.keyFile, PA_GRPC_TLS_NODE_CA_FILE: nodeCa.certFile, PA_GRPC_TLS_BIND_NODE_ID: 'true' },
      nodeEnv,
    });
    const admin = await sys.login('admin', ADMIN_PASSWORD);
    await sys.api('POST', '/roles', admin, { name: 'ops', permissions: [] });
    await sys.api('POST', '/users', admin, { username: 'olga', password: 'olga-password-123', roles: ['ops'] });
    await sys.api('POST', '/connections', admin, { name: 'echo', protocol: 'tcp', host: '127.0.0.1', port: echo.port, tags: { env: 'e2e' } });
    await sys.api('POST', '/policies', admin, { name: 'ops', roles: ['ops'], selector: { tags: { env: 'e2e' } }, rules: [{ effect: 'allow', type: 'all' }] });
  }, 120_000);
  afterAll(async () => {
    for (const u of users) u.cleanup();
    await echo?.close();
    await sys?.stop();
    pki?.cleanup();
  });

  /** A `pa` user logged in as olga, trusting `caFile` for the context when given. */
  const loggedIn = async (caFile?: string): Promise<PaUser> => {
    const u = new PaUser();
    users.push(u);
    const res = await u.run(['login', '--server', sys.cp.url, '--username', 'olga', '--password-stdin', ...(caFile ? ['--ca-file', caFile] : [])], 'olga-password-123\n');
    expect(res.code).toBe(0);
    return u;
  };

  it('registers nodes, pushes keys and ingests their audit over mutual TLS; nodes advertise https:// tunnels', async () => {
    expect(await sys.nodeIds()).toEqual(expect.arrayContaining(['node-0', 'node-1']));
    for (const n of sys.nodes) expect(n.tunnelUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const info = await sys.api('GET', '/info');
    expect(info.body.grpc).toMatchObject({ tls: true });
    expect(sys.logged('Registered with the control plane.', 'node-0')[0]).toMatchObject({ tls: true });
  });

  it('pa connect gets its grant over TLS and tunnels over https://, trusting the CA file of its context; node audit arrives', async () => {
    const olga = await loggedIn(bundle);
    const p = olga.start(['connect', 'echo']);
    try {
      const [, port] = await p.waitFor(/Connected to echo \(tcp\) on 127\.0\.0\.1:(\d+)/);
      expect(await roundTrip(Number(port), 'over tls')).toBe('over tls');
      await p.waitFor(/#1 opened from 127\.0\.0\.1:\d+ via https:\/\/127\.0\.0\.1:\d+/, 'stderr');
    } finally {
      p.child.kill('SIGINT');
    }
    expect(await p.exited).toBe(0);
    await waitFor(async () => {
      const { rows } = await sys.query<{ n: string }>("SELECT count(*) AS n FROM audit_events WHERE action = 'session.end' AND actor_name = 'olga' AND node_id IN ('node-0', 'node-1')");
      return Number(rows[0]?.n) >= 1;
    }, 'session.end shipped by a node over TLS');
  }, 120_000);

  it('pa connect says what to do when it does not trust the grant service, or the nodes', async () => {
    const stranger = await loggedIn();
    const noCa = await stranger.run(['connect', 'echo']);
    expect(noCa.code).toBe(5);
    expect(noCa.stderr).toMatch(/pa: cannot connect to the grant service at 127\.0\.0\.1:\d+ securely: certificate verification failed: .*; if a private CA signs it, pass --ca-file FILE/);

    // Trusting the control plane's CA but not the tunnels' CA: the grant is issued, every tunnel refused.
    const half = stranger.start(['connect', 'echo', '--ca-file', cpCa.certFile]);
    try {
      const [, port] = await half.waitFor(/Connected to echo \(tcp\) on 127\.0\.0\.1:(\d+)/);
      const s = connect({ port: Number(port), host: '127.0.0.1' });
      s.on('error', () => undefined);
      await once(s, 'close');
      const [line] = await half.waitFor(/#1 could not open a tunnel: .*\n/, 'stderr');
      expect(line).toMatch(/https:\/\/127\.0\.0\.1:\d+: certificate verification failed: the server certificate is not signed by a CA this client trusts/);
      expect(line).toContain('pass --ca-file FILE');
    } finally {
      half.child.kill('SIGINT');
    }
    expect(await half.exited).toBe(0);
  }, 120_000);

  it.each([
    ['trusts another CA for the control plane', 'node-wrong-ca', () => ({ PA_CONTROL_PLANE_TLS_CA_FILE: otherCa.certFile }), 'TLS with the control plane failed.', { hint: expect.stringContaining('PA_CONTROL_PLANE_TLS_CA_FILE') }],
    ['presents no client certificate', 'node-no-cert', () => ({ PA_CONTROL_PLANE_TLS_CERT_FILE: '', PA_CONTROL_PLANE_TLS_KEY_FILE: '' }), 'The control plane refused this node.', { code: 'AUTH_CLIENT_CERT_REQUIRED' }],
    ['presents a certificate from another CA', 'node-foreign', () => {
      const c = pki.issue(otherCa, 'node-foreign', { usage: 'client' });
      return { PA_CONTROL_PLANE_TLS_CERT_FILE: c.certFile, PA_CONTROL_PLANE_TLS_KEY_FILE: c.keyFile };
    }, 'The control plane refused this node.', { code: 'AUTH_CLIENT_CERT_REQUIRED' }],
    ['presents the certificate of another node', 'node-impostor', () => {
      const c = clientCerts.get('node-0') as TestCertificate;
      return { PA_CONTROL_PLANE_TLS_CERT_FILE: c.certFile, PA_CONTROL_PLANE_TLS_KEY_FILE: c.keyFile };
    }, 'The control plane refused this node.', { code: 'AUTH_CLIENT_CERT_MISMATCH' }],
  ])('refuses a node that %s, and the node says why', async (_what, nodeId, env, message, fields) => {
    await sys.launchNode(nodeId, env());
    await waitFor(() => sys.logged(message, nodeId).length > 0, `"${message}" from ${nodeId}`);
    expect(sys.logged(message, nodeId)[0]).toMatchObject({ level: 'error', ...fields });
    expect(await sys.nodeIds()).not.toContain(nodeId);
  }, 60_000);
});
