import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startThrowawayPostgres, type ThrowawayPostgres } from '@pa/testing';
import { startProxy, type ProxyHarness, type ProxyHarnessOptions } from './support/proxy-harness';
import { ALL_BUT_DDL_POLICY } from './support/policies';
import { errorOf, msg, rowsOf, WireClient } from './support/wire-client';

/** A test CA, a server certificate for "localhost" signed by it, and an unrelated CA. */
const makePki = (): { ca: string; otherCa: string; cert: string; key: string } => {
  const dir = mkdtempSync(join(tmpdir(), 'pa-pki-'));
  try {
    const run = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    };
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
    run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=pa test CA', ...caExt);
    run('req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.crt', '-days', '2', '-subj', '/CN=pa other CA', ...caExt);
    run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf');
    const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
    return { ca: read('ca.crt'), otherCa: read('other.crt'), cert: read('server.crt'), key: read('server.key') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

const app = { name: 'app_user', password: 'sëcret pass' };

describe('postgres handler: credential injection and backend TLS', () => {
  let pki: ReturnType<typeof makePki>;
  let scram: ThrowawayPostgres;
  let md5: ThrowawayPostgres;
  let cleartext: ThrowawayPostgres;
  const proxies: ProxyHarness[] = [];

  beforeAll(async () => {
    pki = makePki();
    [scram, md5, cleartext] = await Promise.all([
      startThrowawayPostgres({ auth: 'scram-sha-256', users: [app], ssl: { cert: pki.cert, key: pki.key } }),
      startThrowawayPostgres({ auth: 'md5', users: [app] }),
      startThrowawayPostgres({ auth: 'password', users: [app] }),
    ]);
  }, 180_000);
  afterEach(async () => {
    for (const p of proxies.splice(0)) await p.close();
  });
  afterAll(async () => {
    await Promise.all([scram, md5, cleartext].map((s) => s?.stop()));
  });

  const proxyTo = async (server: ThrowawayPostgres, extra: Partial<ProxyHarnessOptions> = {}): Promise<ProxyHarness> => {
    const p = await startProxy({
      host: server.host,
      port: server.port,
      database: 'postgres',
      credentials: { kind: 'password', username: app.name, password: app.password },
      policies: ALL_BUT_DDL_POLICY,
      ...extra,
    });
    proxies.push(p);
    return p;
  };

  const whoAmI = async (p: ProxyHarness): Promise<string[][]> => {
    const { client, startup } = await WireClient.connect(p.port, 'postgres');
    try {
      const e = startup.find((m) => m.type === 'E');
      if (e) throw new Error(`${errorOf(e).code}: ${errorOf(e).message}`);
      client.send(msg.query("SELECT current_user, coalesce((SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()), 'false')"));
      return rowsOf(await client.readyForQuery()) as string[][];
    } finally {
      client.close();
    }
  };

  it.each([
    ['SCRAM-SHA-256', () => scram],
    ['MD5', () => md5],
    ['cleartext password', () => cleartext],
  ])('logs in with the injected credentials over %s; the client is never asked for a password', async (_m, server) => {
    const p = await proxyTo(server());
    expect(await whoAmI(p)).toEqual([[app.name, 'false']]);
  });

  it('reports a wrong backend password to the client as FATAL 08001, not a hang', async () => {
    const p = await proxyTo(scram, { credentials: { kind: 'password', username: app.name, password: 'wrong' } });
    const { client, startup } = await WireClient.connect(p.port, 'postgres');
    expect(startup.map((m) => m.type)).toEqual(['E']);
    expect(errorOf(startup[0])).toMatchObject({ severity: 'FATAL', code: '08001' });
    expect(errorOf(startup[0]).message).not.toContain('wrong');
    client.close();
  });

  it('connects with TLS verify-full when the certificate names the host', async () => {
    const p = await proxyTo(scram, { host: 'localhost', tlsMode: 'verify-full', handler: { backendTls: { ca: pki.ca } } });
    expect(await whoAmI(p)).toEqual([[app.name, 'true']]);
  });

  it.each([
    ['a host the certificate does not name', { host: '127.0.0.1', ca: 'ca' }],
    ['a certificate from another CA', { host: 'localhost', ca: 'otherCa' }],
  ] as const)('refuses TLS verify-full with %s (FATAL 08001)', async (_why, o) => {
    const p = await proxyTo(scram, { host: o.host, tlsMode: 'verify-full', handler: { backendTls: { ca: pki[o.ca] } } });
    const { client, startup } = await WireClient.connect(p.port, 'postgres');
    expect(errorOf(startup[0])).toMatchObject({ severity: 'FATAL', code: '08001' });
    client.close();
  });

  it('refuses a server without TLS when the connection requires it', async () => {
    const p = await proxyTo(md5, { tlsMode: 'require' });
    const { client, startup } = await WireClient.connect(p.port, 'postgres');
    expect(errorOf(startup[0])).toMatchObject({ severity: 'FATAL', code: '08001' });
    client.close();
  });
});
