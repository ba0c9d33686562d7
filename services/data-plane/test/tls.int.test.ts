import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, ServerCredentials, type ServerWritableStream } from '@grpc/grpc-js';
import { AuditAckStatus, NodeServiceService, type NodeServiceServer, type WatchKeysRequest, type WatchKeysResponse } from '@pa/contracts';
import { AppError, createCaptureLogger, tlsFailureOf } from '@pa/kit';
import { createState, type State } from '@pa/state';
import { createTestPki, thrownAppError, type TestCa, type TestCertificate, type TestPki } from '@pa/testing';
import { openTunnel } from '@pa/tunnel';
import type { AuditEvent } from '../src/audit';
import { loadConfig } from '../src/config';
import { ControlPlaneClient } from '../src/control-plane-client';
import { startNode, type RunningNode } from '../src/node';
import { createGrantFactory } from '../src/testing/grant-factory';
import { recordingTransport } from '../src/testing/recording-transport';
import { readBytes, tcpServer } from '../src/testing/socket-pair';
import { loadNodeTls } from '../src/tls';

/** The node's TLS: its configuration, the HTTPS tunnel listener, and TLS to the control plane (against a NodeService stand-in). */

/** Resolves once `lines` (JSON log lines) has one whose message is `message`; rejects after a bound. */
const logged = async (lines: string[], message: string, ms = 10_000): Promise<Record<string, unknown>> => {
  const end = Date.now() + ms;
  for (;;) {
    const hit = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r.message === message);
    if (hit) return hit;
    if (Date.now() > end) throw new Error(`no "${message}" in the log within ${ms} ms:\n${lines.join('')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

const configError = (fn: () => unknown): AppError => thrownAppError(fn, 'CONFIG_INVALID');

let pki: TestPki;
let ca: TestCa;
let otherCa: TestCa;
/** For 127.0.0.1 and localhost (the tunnel listener, the control plane stand-in). */
let local: TestCertificate;
/** For cp.internal only (a name other than the one dialled). */
let named: TestCertificate;
let nodeClientCert: TestCertificate;

beforeAll(() => {
  pki = createTestPki();
  ca = pki.ca('pa test CA');
  otherCa = pki.ca('pa other CA');
  local = pki.issue(ca, 'localhost', { dns: ['localhost'], ips: ['127.0.0.1'] });
  named = pki.issue(ca, 'cp.internal');
  nodeClientCert = pki.issue(ca, 'node-1', { usage: 'client' });
});
afterAll(() => pki.cleanup());

describe('node TLS configuration', () => {
  it('maps the environment: tunnel certificate, key and reload interval, control-plane CA, client certificate, server name', () => {
    expect(loadConfig({}).tunnel.tls.reloadIntervalSeconds).toBe(30);
    const c = loadConfig({
      PA_TUNNEL_TLS_CERT_FILE: '/tls/tunnel.crt',
      PA_TUNNEL_TLS_KEY_FILE: '/tls/tunnel.key',
      PA_TUNNEL_TLS_RELOAD_SECONDS: '5',
      PA_CONTROL_PLANE_TLS_CA_FILE: '/tls/ca.crt',
      PA_CONTROL_PLANE_TLS_CERT_FILE: '/tls/node.crt',
      PA_CONTROL_PLANE_TLS_KEY_FILE: '/tls/node.key',
      PA_CONTROL_PLANE_TLS_SERVER_NAME: 'cp.internal',
      PA_CONTROL_PLANE_TLS: 'true',
    });
    expect(c.tunnel.tls).toEqual({ certFile: '/tls/tunnel.crt', keyFile: '/tls/tunnel.key', reloadIntervalSeconds: 5 });
    expect(c.controlPlane.tls).toEqual({ enabled: true, caFile: '/tls/ca.crt', certFile: '/tls/node.crt', keyFile: '/tls/node.key', serverName: 'cp.internal' });
  });

  it('keeps environment settings of a section when overrides set others in it', () => {
    const c = loadConfig({ PA_TUNNEL_TLS_CERT_FILE: '/tls/t.crt', PA_TUNNEL_TLS_KEY_FILE: '/tls/t.key' }, { tunnel: { port: 0 } });
    expect(c.tunnel).toMatchObject({ port: 0, tls: { certFile: '/tls/t.crt', keyFile: '/tls/t.key' } });
  });

  it.each([
    ['a tunnel certificate without its key', { PA_TUNNEL_TLS_CERT_FILE: '/t.crt' }, 'tunnel.tls.keyFile', /PA_TUNNEL_TLS_KEY_FILE is required with PA_TUNNEL_TLS_CERT_FILE/],
    ['a tunnel key without its certificate', { PA_TUNNEL_TLS_KEY_FILE: '/t.key' }, 'tunnel.tls.certFile', /PA_TUNNEL_TLS_CERT_FILE is required/],
    ['an http:// public URL for an HTTPS listener', { PA_TUNNEL_TLS_CERT_FILE: '/t.crt', PA_TUNNEL_TLS_KEY_FILE: '/t.key', PA_TUNNEL_PUBLIC_URL: 'http://node.example.com:7000' }, 'tunnel.publicUrl', /must be an https:\/\/ URL/],
    ['a client certificate without its key', { PA_CONTROL_PLANE_TLS_CERT_FILE: '/n.crt' }, 'controlPlane.tls.keyFile', /PA_CONTROL_PLANE_TLS_KEY_FILE is required/],
    ['TLS turned off with a CA file set', { PA_CONTROL_PLANE_TLS: 'false', PA_CONTROL_PLANE_TLS_CA_FILE: '/ca.crt' }, 'controlPlane.tls.enabled', /PA_CONTROL_PLANE_TLS is false/],
  ])('refuses %s, naming the setting', (_what, env, path, message) => {
    const err = configError(() => loadConfig(env));
    expect(err.details.map((d) => d.path)).toEqual([path]);
    expect(err.message).toMatch(message);
  });

  it('turns control-plane TLS on with any TLS setting, or PA_CONTROL_PLANE_TLS=true alone (system CAs)', () => {
    expect(loadNodeTls(loadConfig({})).controlPlane).toBeNull();
    expect(loadNodeTls(loadConfig({ PA_CONTROL_PLANE_TLS: 'true' })).controlPlane).toEqual({ ca: null, keyPair: null, serverName: undefined });
    expect(loadNodeTls(loadConfig({ PA_CONTROL_PLANE_TLS_SERVER_NAME: 'cp.internal' })).controlPlane).toMatchObject({ ca: null, serverName: 'cp.internal' });
    const full = loadNodeTls(loadConfig({ PA_CONTROL_PLANE_TLS_CA_FILE: ca.certFile, PA_CONTROL_PLANE_TLS_CERT_FILE: nodeClientCert.certFile, PA_CONTROL_PLANE_TLS_KEY_FILE: nodeClientCert.keyFile }));
    expect(full.controlPlane?.ca?.toString()).toBe(ca.cert);
    expect(full.controlPlane?.keyPair?.cert.toString()).toBe(nodeClientCert.cert);
  });

  it('refuses to start with unreadable or mismatched files, reporting them all at once without key material', async () => {
    const { logger } = createCaptureLogger('node-test');
    const config = loadConfig({
      PA_TUNNEL_TLS_CERT_FILE: local.certFile,
      PA_TUNNEL_TLS_KEY_FILE: named.keyFile,
      PA_CONTROL_PLANE_TLS_CA_FILE: join(pki.dir, 'no-such-ca.crt'),
    }, { tunnel: { port: 0 }, admin: { port: 0 } });
    const err = await startNode(config, logger).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('CONFIG_INVALID');
    expect((err as AppError).details.map((d) => d.path)).toEqual(['PA_CONTROL_PLANE_TLS_CA_FILE', 'PA_TUNNEL_TLS_KEY_FILE']);
    expect((err as AppError).message).toContain(`PA_TUNNEL_TLS_KEY_FILE: ${named.keyFile}: does not match the certificate in PA_TUNNEL_TLS_CERT_FILE`);
    expect((err as AppError).message).toContain(`PA_CONTROL_PLANE_TLS_CA_FILE: ${join(pki.dir, 'no-such-ca.crt')}: cannot be read (ENOENT)`);
    expect((err as AppError).message).not.toMatch(/BEGIN|PRIVATE/);
  });
});

describe('tunnel listener over TLS', () => {
  let state: State;
  let node: RunningNode;
  let dir: string;
  let echo: Awaited<ReturnType<typeof tcpServer>>;
  let factory: Awaited<ReturnType<typeof createGrantFactory>>;
  const shipped: AuditEvent[] = [];
  const capture = createCaptureLogger('node-test', 'info');

  beforeAll(async () => {
    const { logger } = capture;
    state = createState({ logger });
    await state.revocations.start();
    factory = await createGrantFactory();
    echo = await tcpServer((s) => s.pipe(s));
    dir = mkdtempSync(join(tmpdir(), 'pa-node-tls-'));
    const config = loadConfig(
      { PA_TUNNEL_TLS_CERT_FILE: local.certFile, PA_TUNNEL_TLS_KEY_FILE: local.keyFile },
      { environment: 'production', dataDir: dir, tunnel: { port: 0 }, admin: { port: 0 }, controlPlane: { issuer: factory.issuer }, drainTimeoutSeconds: 1 },
    );
    node = await startNode(config, logger, {
      state,
      keys: factory.keys,
      transport: recordingTransport(shipped),
    });
  });
  afterAll(async () => {
    await node?.stop();
    await state?.close();
    await echo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('advertises an https:// URL and relays a tunnel for a client that trusts the CA', async () => {
    expect(node.tunnelUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const g = await factory.sign({ protocol: 'tcp', host: '127.0.0.1', port: echo.port });
    const { socket } = await openTunnel({ url: node.tunnelUrl, grant: g.token, ca: ca.cert });
    socket.write('over tls');
    expect((await readBytes(socket, 8)).toString()).toBe('over tls');
    socket.end();
    await once(socket, 'close');
  });

  it('is refused by a client that does not trust the CA, with a certificate error the CLI can explain', async () => {
    const g = await factory.sign({ protocol: 'tcp', host: '127.0.0.1', port: echo.port });
    for (const trust of [undefined, otherCa.cert]) {
      const err = await openTunnel({ url: node.tunnelUrl, grant: g.token, ...(trust ? { ca: trust } : {}) }).catch((e: unknown) => e);
      expect(tlsFailureOf(err)).toMatchObject({ kind: 'untrusted' });
    }
    // A plain-HTTP client gets no tunnel either.
    const plain = await openTunnel({ url: node.tunnelUrl.replace('https:', 'http:'), grant: g.token, timeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(plain).toHaveProperty('message');
    expect(plain).not.toHaveProperty('socket');
  });

  it('warns in production that the control-plane connection is not encrypted (tunnels are)', async () => {
    const warning = await logged(capture.lines, 'The node talks to the control plane without TLS.');
    expect(warning.level).toBe('warn');
    expect(capture.lines.join('')).not.toContain('Tunnels are advertised over plain HTTP.');
  });
});

describe('the node dialling the control plane with TLS', () => {
  /** A NodeService stand-in on TLS (or plaintext): registers anything, sends an empty key set, acknowledges audit. */
  const startStandIn = async (cert: TestCertificate | null) => {
    const registered: string[] = [];
    const ingested: string[] = [];
    const impl: NodeServiceServer = {
      registerNode: (call, cb) => {
        registered.push(call.request.node?.nodeId ?? '');
        cb(null, { heartbeatIntervalSeconds: 60 });
      },
      heartbeat: (_call, cb) => cb(null, { heartbeatIntervalSeconds: 60 }),
      deregisterNode: (_call, cb) => cb(null, {}),
      watchKeys: (call: ServerWritableStream<WatchKeysRequest, WatchKeysResponse>) => {
        call.write({ keySet: { version: 1, grantVerificationKeys: [], credentialDecryptionKeys: [] } });
      },
      ingestAudit: (call, cb) => {
        ingested.push(...call.request.events.map((e) => e.eventId));
        cb(null, { acks: call.request.events.map((e) => ({ eventId: e.eventId, status: AuditAckStatus.STORED, errorCode: '', errorMessage: '' })) });
      },
    };
    const server = new Server();
    server.addService(NodeServiceService, impl);
    const creds = cert ? ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(cert.cert), private_key: Buffer.from(cert.key) }]) : ServerCredentials.createInsecure();
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
    return { address: `127.0.0.1:${port}`, registered, ingested, close: () => server.forceShutdown() };
  };

  const clients: ControlPlaneClient[] = [];
  const stops: Array<() => void> = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    for (const s of stops.splice(0)) s();
  });

  /** A ControlPlaneClient as startNode builds it, from node config `env`. */
  const dial = (address: string, env: Record<string, string>) => {
    const capture = createCaptureLogger('node-test', 'info');
    const keys: number[] = [];
    const tls = loadNodeTls(loadConfig(env)).controlPlane;
    const client = new ControlPlaneClient({
      address,
      token: 't'.repeat(40),
      tls,
      logger: capture.logger,
      node: () => ({ nodeId: 'node-1', version: 'test', tunnelUrl: 'https://127.0.0.1:7000', protocols: [] }),
      load: () => ({ sessions: [], auditSpoolDepth: 0, draining: false }),
      onKeys: (_store, set) => keys.push(set.version),
    });
    clients.push(client);
    client.start();
    return { client, lines: capture.lines, keys };
  };

  it('registers, receives keys and ships audit over TLS, verifying the control plane against the configured CA', async () => {
    const cp = await startStandIn(local);
    stops.push(cp.close);
    const { client, lines, keys } = dial(cp.address, { PA_CONTROL_PLANE_TLS_CA_FILE: ca.certFile });
    await logged(lines, 'Registered with the control plane.');
    expect(cp.registered).toEqual(['node-1']);
    expect(client.connected).toBe(true);
    const res = await client.send([{ id: 'evt_01m85nk2f0vzdnhbsy6vn1w2xg', time: new Date().toISOString(), nodeId: 'node-1', actor: { id: '', name: '' }, action: 'tunnel.open', outcome: 'allowed', connectionId: '', grantId: '', sessionId: '', protocol: 'tcp', details: {} } as AuditEvent]);
    expect(res.acked).toEqual(['evt_01m85nk2f0vzdnhbsy6vn1w2xg']);
    expect(keys).toEqual([1]);
  });

  it('checks the certificate against PA_CONTROL_PLANE_TLS_SERVER_NAME when the dialled host is not in it', async () => {
    const cp = await startStandIn(named);
    stops.push(cp.close);
    const wrongName = dial(cp.address, { PA_CONTROL_PLANE_TLS_CA_FILE: ca.certFile });
    const failure = await logged(wrongName.lines, 'TLS with the control plane failed.');
    expect(failure).toMatchObject({ level: 'error', code: 'ERR_TLS_CERT_ALTNAME_INVALID', hint: expect.stringContaining('PA_CONTROL_PLANE_TLS_SERVER_NAME') });
    const overridden = dial(cp.address, { PA_CONTROL_PLANE_TLS_CA_FILE: ca.certFile, PA_CONTROL_PLANE_TLS_SERVER_NAME: 'cp.internal' });
    await logged(overridden.lines, 'Registered with the control plane.');
  });

  it('explains a control plane whose certificate another CA signed, once, and never registers', async () => {
    const cp = await startStandIn(local);
    stops.push(cp.close);
    const { lines } = dial(cp.address, { PA_CONTROL_PLANE_TLS_CA_FILE: otherCa.certFile });
    const failure = await logged(lines, 'TLS with the control plane failed.');
    expect(failure).toMatchObject({ level: 'error', reason: expect.stringContaining('not signed by a CA this client trusts'), hint: expect.stringContaining('PA_CONTROL_PLANE_TLS_CA_FILE') });
    expect(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN']).toContain(failure.code);
    expect(cp.registered).toEqual([]);
  });

  it('explains TLS on one side only', async () => {
    const tlsCp = await startStandIn(local);
    const plainCp = await startStandIn(null);
    stops.push(tlsCp.close, plainCp.close);
    const plainNode = dial(tlsCp.address, {});
    expect(await logged(plainNode.lines, 'The control plane serves TLS, but this node dials it in plaintext.')).toMatchObject({ hint: expect.stringContaining('PA_CONTROL_PLANE_TLS=true') });
    const tlsNode = dial(plainCp.address, { PA_CONTROL_PLANE_TLS_CA_FILE: ca.certFile });
    expect(await logged(tlsNode.lines, 'TLS with the control plane failed.')).toMatchObject({ hint: expect.stringContaining('serves plaintext') });
  });
});

describe('tunnel certificate rotation without a restart', () => {
  let state: State;
  let node: RunningNode;
  let dir: string;
  let certFile: string;
  let keyFile: string;
  let next: TestCertificate;
  const capture = createCaptureLogger('node-test', 'info');

  /** The serial number of the certificate a TLS handshake with `port` presents (after an SSLRequest for the PostgreSQL port). */
  const presented = async (port: number, postgres = false): Promise<string> => {
    const raw = connect({ host: '127.0.0.1', port });
    await once(raw, 'connect');
    if (postgres) {
      const sslRequest = Buffer.alloc(8);
      sslRequest.writeInt32BE(8, 0);
      sslRequest.writeInt32BE(80877103, 4);
      raw.write(sslRequest);
      expect((await readBytes(raw, 1)).toString()).toBe('S');
    }
    const s = tlsConnect({ socket: raw, ca: ca.cert, servername: 'localhost' });
    await once(s, 'secureConnect');
    const serial = s.getPeerCertificate().serialNumber.toUpperCase();
    s.destroy();
    return serial;
  };
  const serialOf = (c: TestCertificate): string => new X509Certificate(c.cert).serialNumber.toUpperCase();
  const portOf = (url: string): number => Number(new URL(url).port);

  beforeAll(async () => {
    next = pki.issue(ca, 'localhost', { dns: ['localhost'], ips: ['127.0.0.1'] });
    dir = mkdtempSync(join(tmpdir(), 'pa-node-rotate-'));
    certFile = join(dir, 'tunnel.crt');
    keyFile = join(dir, 'tunnel.key');
    writeFileSync(certFile, local.cert);
    writeFileSync(keyFile, local.key);
    state = createState({ logger: capture.logger });
    await state.revocations.start();
    const factory = await createGrantFactory();
    const config = loadConfig(
      { PA_TUNNEL_TLS_CERT_FILE: certFile, PA_TUNNEL_TLS_KEY_FILE: keyFile, PA_TUNNEL_TLS_RELOAD_SECONDS: '0.05' },
      { dataDir: dir, tunnel: { port: 0 }, postgresDirect: { port: 0 }, admin: { port: 0 }, controlPlane: { issuer: factory.issuer }, drainTimeoutSeconds: 1 },
    );
    node = await startNode(config, capture.logger, { state, keys: factory.keys, transport: recordingTransport([]) });
  });
  afterAll(async () => {
    await node?.stop();
    await state?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the certificate when the new files do not read, then serves the rotated one on the tunnel and direct PostgreSQL ports', async () => {
    const tunnelPort = portOf(node.tunnelUrl);
    const directPort = Number((node.postgresDirectAddress as string).split(':').pop());
    expect(await presented(tunnelPort)).toBe(serialOf(local));
    expect(await presented(directPort, true)).toBe(serialOf(local));
    // A half-written file: refused, the current certificate stays.
    writeFileSync(certFile, '-----BEGIN CERTIFICATE-----\nnot yet\n');
    const warning = await logged(capture.lines, 'The tunnel TLS files changed but could not be used; keeping the current certificate.');
    expect(warning.level).toBe('warn');
    expect(JSON.stringify(warning)).not.toMatch(/PRIVATE KEY/);
    expect(await presented(tunnelPort)).toBe(serialOf(local));
    // The new pair, written as a rotation tool would (key, then certificate).
    writeFileSync(keyFile, next.key);
    writeFileSync(certFile, next.cert);
    await logged(capture.lines, 'Tunnel TLS certificate reloaded.');
    expect(await presented(tunnelPort)).toBe(serialOf(next));
    expect(await presented(directPort, true)).toBe(serialOf(next));
  });
});
