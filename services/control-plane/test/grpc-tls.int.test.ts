import { credentials, status, type ChannelCredentials } from '@grpc/grpc-js';
import { AuditAckStatus, AuditOutcome, GrantServiceClient, NodeServiceClient, Protocol, timestampFromDate } from '@pa/contracts';
import { type AppError, newId } from '@pa/kit';
import { createTestPki, thrownAppError, type TestCa, type TestCertificate, type TestPki } from '@pa/testing';
import { loadGrpcTls, type GrpcTls } from '../src/grpc/tls';
import { createConnection, createPolicy, createRole, userWithToken } from './fixtures';
import { grantClient, grpcFailure, nextKeySet, nodeClient, type NodeSpec } from './grpc-client';
import { createHarness, startGrpc, type GrpcHarness, type Harness } from './harness';

/**
 * The gRPC listener with TLS, on real sockets with a throwaway PKI: server TLS
 * for everyone, and mutual TLS for NodeService (users' GrantService calls need
 * no client certificate on the same port).
 */
describe('gRPC over TLS', () => {
  let pki: TestPki;
  let serverCa: TestCa;
  let nodeCa: TestCa;
  let otherCa: TestCa;
  let serverCert: TestCertificate;
  /** Client certificates: CN node-a from the node CA; DNS SAN node-b; node-a from another CA; node-a for servers only. */
  let nodeA: TestCertificate;
  let nodeBySan: TestCertificate;
  let foreign: TestCertificate;
  let serverOnly: TestCertificate;
  let h: Harness;
  let alice: string;

  beforeAll(async () => {
    pki = createTestPki();
    serverCa = pki.ca('pa test server CA');
    nodeCa = pki.ca('pa test node CA');
    otherCa = pki.ca('pa other CA');
    serverCert = pki.issue(serverCa, 'localhost', { dns: ['localhost'], ips: ['127.0.0.1'] });
    nodeA = pki.issue(nodeCa, 'node-a', { usage: 'client' });
    nodeBySan = pki.issue(nodeCa, 'data plane pod', { usage: 'client', dns: ['node-b'] });
    foreign = pki.issue(otherCa, 'node-a', { usage: 'client' });
    serverOnly = pki.issue(nodeCa, 'node-a', { usage: 'server' });
    h = await createHarness({ grpc: { tls: { certFile: serverCert.certFile, keyFile: serverCert.keyFile, nodeCaFile: nodeCa.certFile } } });
    await createRole(h, 'dba', []);
    alice = (await userWithToken(h, 'alice', ['dba'])).token;
    await createConnection(h, { name: 'orders-db', protocol: 'postgres', host: 'orders.db.internal', port: 5432, database: 'orders' });
    await createPolicy(h, { name: 'dba-orders', roles: ['dba'], selector: { connections: ['orders-db'] }, rules: [{ id: 'read', effect: 'allow', type: 'sql', kinds: ['select'] }] });
  });
  afterAll(async () => {
    await h?.close();
    pki?.cleanup();
  });

  /** Channel credentials trusting `ca`, presenting `client` when given. */
  const tlsCredentials = (ca: TestCa, client?: TestCertificate): ChannelCredentials =>
    credentials.createSsl(Buffer.from(ca.cert), client ? Buffer.from(client.key) : null, client ? Buffer.from(client.cert) : null);
  /** The same server, dialled with other credentials (closed by the harness). */
  const dialWith = (g: GrpcHarness, creds: ChannelCredentials): GrpcHarness => {
    const grants = new GrantServiceClient(g.address, creds);
    const nodes = new NodeServiceClient(g.address, creds);
    h.defer(async () => {
      grants.close();
      nodes.close();
    });
    return { ...g, grants, nodes };
  };
  const node = (nodeId: string): NodeSpec => ({ nodeId, tunnelUrl: `https://${nodeId}.test:7000`, protocols: [Protocol.POSTGRES] });
  const auditEvent = (nodeId: string) => ({
    eventId: newId('evt'),
    time: timestampFromDate(new Date()),
    nodeId,
    actorUserId: 'usr_00000000000000000000000001',
    actorUserName: 'alice',
    action: 'sql.statement',
    protocol: Protocol.POSTGRES,
    outcome: AuditOutcome.ALLOWED,
  });
  /** Every NodeService call a node makes, as `nodeId`, each expected to fail (started one at a time). */
  const everyNodeCall = (g: GrpcHarness, nodeId: string, token?: string): Array<() => Promise<unknown>> => {
    const c = nodeClient(g, token);
    return [
      () => c.register(node(nodeId)),
      () => c.heartbeat(node(nodeId)),
      () => c.ingest({ nodeId, events: [auditEvent(nodeId)] }),
      () => c.deregister(nodeId),
      async () => {
        const watch = c.watch(nodeId);
        try {
          return await watch.next();
        } finally {
          watch.cancel();
        }
      },
    ];
  };

  it('tells the CLI that the grant service speaks TLS (GET /api/v1/info)', async () => {
    const res = await h.request.get('/api/v1/info');
    expect(res.status).toBe(200);
    expect(res.body.grpc.tls).toBe(true);
  });

  describe('server TLS without client certificates', () => {
    let g: GrpcHarness;
    beforeAll(async () => {
      const tls = loadGrpcTls({ certFile: serverCert.certFile, keyFile: serverCert.keyFile, bindNodeId: false }) as GrpcTls;
      expect(tls.nodeCa).toBeNull();
      g = await startGrpc(h, { tls, credentials: tlsCredentials(serverCa) });
    });

    it('serves NodeService (node token) and GrantService (access token) to clients that trust its CA', async () => {
      await nodeClient(g).register(node('node-plain-tls'));
      const grant = await grantClient(g, alice).issue('orders-db');
      expect(grant.tunnelUrls).toContain('https://node-plain-tls.test:7000');
    });

    it('is refused by a plaintext client and by a client that trusts another CA (no call reaches a service)', async () => {
      for (const creds of [credentials.createInsecure(), tlsCredentials(otherCa)]) {
        const other = dialWith(g, creds);
        const f = await grpcFailure(nodeClient(other).register(node('node-intruder')));
        expect(f.code).toBe(status.UNAVAILABLE);
        const u = await grpcFailure(grantClient(other, alice).issue('orders-db'));
        expect(u.code).toBe(status.UNAVAILABLE);
      }
    });
  });

  describe('mutual TLS for nodes', () => {
    let g: GrpcHarness;
    beforeAll(async () => {
      g = await startGrpc(h, { tls: loadGrpcTls(h.config.grpc.tls), credentials: tlsCredentials(serverCa, nodeA) });
    });

    it('serves a node with a certificate from the node CA and the node token: register, heartbeat, key watch, audit ingest, deregister', async () => {
      const c = nodeClient(g);
      expect((await c.register(node('node-a'))).heartbeatIntervalSeconds).toBeGreaterThan(0);
      await c.heartbeat(node('node-a'), { sessions: [] });
      const watch = c.watch('node-a');
      try {
        expect((await nextKeySet(watch)).grantVerificationKeys.length).toBeGreaterThan(0);
      } finally {
        watch.cancel();
      }
      const event = auditEvent('node-a');
      const res = await c.ingest({ nodeId: 'node-a', events: [event] });
      expect(res.acks).toEqual([expect.objectContaining({ eventId: event.eventId, status: AuditAckStatus.STORED })]);
      await c.deregister('node-a');
    });

    it('serves users on the same port without a client certificate (GrantService)', async () => {
      await nodeClient(g).register(node('node-a'));
      const user = dialWith(g, tlsCredentials(serverCa));
      const grant = await grantClient(user, alice).issue('orders-db');
      expect(grant.grantToken).toMatch(/^ey/);
    });

    it.each([
      ['no client certificate', () => undefined],
      ['a certificate from another CA', () => foreign],
      ['a certificate of the node CA issued for servers only', () => serverOnly],
    ])('refuses every NodeService call from a node with %s (AUTH_CLIENT_CERT_REQUIRED)', async (_what, cert) => {
      const other = dialWith(g, tlsCredentials(serverCa, cert()));
      for (const call of everyNodeCall(other, 'node-a')) {
        const f = await grpcFailure(call());
        expect([f.code, f.errorCode]).toEqual([status.UNAUTHENTICATED, 'AUTH_CLIENT_CERT_REQUIRED']);
        expect(f.details).toMatch(/client certificate signed by the node CA/);
      }
    });

    it('still requires the node token from a node with a valid certificate', async () => {
      for (const call of everyNodeCall(g, 'node-a', 'not-the-node-token')) {
        const f = await grpcFailure(call());
        expect([f.code, f.errorCode]).toEqual([status.UNAUTHENTICATED, 'AUTH_TOKEN_INVALID']);
      }
    });

    it('does not tie the certificate to a node id unless told to', async () => {
      await nodeClient(g).register(node('node-with-any-id'));
    });
  });

  describe('certificates bound to node ids', () => {
    let g: GrpcHarness;
    beforeAll(async () => {
      g = await startGrpc(h, { tls: { ...(loadGrpcTls(h.config.grpc.tls) as GrpcTls), bindNodeId: true }, credentials: tlsCredentials(serverCa, nodeA) });
    });

    it('serves a node whose certificate names its id, as CN or as a DNS subject alternative name', async () => {
      await nodeClient(g).register(node('node-a'));
      await nodeClient(g).heartbeat(node('node-a'));
      const b = dialWith(g, tlsCredentials(serverCa, nodeBySan));
      await nodeClient(b).register(node('node-b'));
      await nodeClient(b).ingest({ nodeId: 'node-b', events: [auditEvent('node-b')] });
    });

    it('refuses a node that calls with an id its certificate does not name (AUTH_CLIENT_CERT_MISMATCH)', async () => {
      for (const call of everyNodeCall(g, 'node-b')) {
        const f = await grpcFailure(call());
        expect([f.code, f.errorCode]).toEqual([status.PERMISSION_DENIED, 'AUTH_CLIENT_CERT_MISMATCH']);
        expect(f.details).toContain('node-b');
      }
    });
  });

  describe('loadGrpcTls', () => {
    const configError = (fn: () => unknown): AppError => thrownAppError(fn, 'CONFIG_INVALID');

    it('reports every unusable file at once, naming the setting and the file, never the key', () => {
      const notPem = pki.file('not-a-cert.pem', 'hello\n');
      const err = configError(() => loadGrpcTls({ certFile: notPem, keyFile: `${pki.dir}/missing.key`, nodeCaFile: `${pki.dir}/missing-ca.crt`, bindNodeId: false }));
      expect(err.details.map((d) => d.path)).toEqual(['PA_GRPC_TLS_CERT_FILE', 'PA_GRPC_TLS_KEY_FILE', 'PA_GRPC_TLS_NODE_CA_FILE']);
      expect(err.message).toContain(`PA_GRPC_TLS_CERT_FILE: ${notPem}: holds no PEM certificate`);
      expect(err.message).toContain(`PA_GRPC_TLS_KEY_FILE: ${pki.dir}/missing.key: cannot be read (ENOENT)`);
      expect(err.message).toContain('PA_GRPC_TLS_NODE_CA_FILE');
    });

    it('refuses a key that does not belong to the certificate, without printing either', () => {
      const err = configError(() => loadGrpcTls({ certFile: serverCert.certFile, keyFile: nodeA.keyFile, bindNodeId: false }));
      expect(err.message).toContain(`PA_GRPC_TLS_KEY_FILE: ${nodeA.keyFile}: does not match the certificate in PA_GRPC_TLS_CERT_FILE`);
      expect(err.message).not.toMatch(/BEGIN|PRIVATE/);
    });
  });
});
