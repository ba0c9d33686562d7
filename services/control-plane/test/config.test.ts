import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AppError, type Env } from '@pa/kit';
import { thrownAppError } from '@pa/testing';
import { loadConfig } from '../src/config';

const configError = (fn: () => unknown): AppError => thrownAppError(fn, 'CONFIG_INVALID');

const masterKey = (id = 'k1') => `${id}:${randomBytes(32).toString('base64')}`;

describe('loadConfig', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pa-cp-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  let n = 0;
  /** Writes `text` to a fresh file in the temp dir and returns its path. */
  const file = (text: string, ext = 'yaml'): string => {
    n += 1;
    const path = join(dir, `file-${n}.${ext}`);
    writeFileSync(path, text);
    return path;
  };

  it('has defaults for everything and no secrets', () => {
    const c = loadConfig({});
    expect(c.environment).toBe('development');
    expect(c.dataDir).toBe('./.data');
    expect(c.logLevel).toBe('info');
    expect(c.http).toEqual({ host: '127.0.0.1', port: 8080, trustProxy: 0, bodyLimitBytes: 1_048_576 });
    expect(c.grpc).toEqual({ host: '127.0.0.1', port: 9090, tls: { bindNodeId: false } });
    expect(c.database).toEqual({ poolSize: 10, migrateOnStart: true });
    expect(c.database.url).toBeUndefined();
    expect(c.redis).toEqual({ keyPrefix: 'pa:' });
    expect(c.auth).toEqual({
      issuer: 'port-authorizing',
      audience: 'pa-api',
      accessTokenTtlSeconds: 900,
      refreshTokenTtlSeconds: 7 * 86_400,
      bcryptCost: 12,
      throttleUserFailures: 5,
      throttleAddressFailures: 30,
      throttleWindowSeconds: 900,
    });
    expect(c.bootstrap).toEqual({ adminUsername: 'admin' });
    expect(c.secrets.masterKeys).toBeUndefined();
  });

  it('returns a deeply frozen object', () => {
    const c = loadConfig({});
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.http)).toBe(true);
    expect(() => {
      (c.http as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it.each<[string, string, (c: ReturnType<typeof loadConfig>) => unknown, unknown]>([
    ['PA_ENV', 'test', (c) => c.environment, 'test'],
    ['PA_DATA_DIR', '/var/lib/pa', (c) => c.dataDir, '/var/lib/pa'],
    ['PA_LOG_LEVEL', 'debug', (c) => c.logLevel, 'debug'],
    ['PA_HTTP_HOST', '0.0.0.0', (c) => c.http.host, '0.0.0.0'],
    ['PA_HTTP_PORT', '18080', (c) => c.http.port, 18080],
    ['PA_PUBLIC_URL', 'https://pa.example.com', (c) => c.http.publicUrl, 'https://pa.example.com'],
    ['PA_TRUST_PROXY', '2', (c) => c.http.trustProxy, 2],
    ['PA_GRPC_HOST', '10.0.0.1', (c) => c.grpc.host, '10.0.0.1'],
    ['PA_GRPC_PORT', '19090', (c) => c.grpc.port, 19090],
    ['DATABASE_URL', 'postgres://pa@db.example:5432/pa', (c) => c.database.url, 'postgres://pa@db.example:5432/pa'],
    ['PA_DB_POOL_SIZE', '25', (c) => c.database.poolSize, 25],
    ['PA_MIGRATE_ON_START', 'no', (c) => c.database.migrateOnStart, false],
    ['PA_MIGRATE_ON_START', '0', (c) => c.database.migrateOnStart, false],
    ['REDIS_URL', 'redis://cache.example:6379', (c) => c.redis.url, 'redis://cache.example:6379'],
    ['PA_REDIS_PREFIX', 'pa-prod:', (c) => c.redis.keyPrefix, 'pa-prod:'],
    ['PA_ACCESS_TOKEN_TTL', '300', (c) => c.auth.accessTokenTtlSeconds, 300],
    ['PA_REFRESH_TOKEN_TTL', '3600', (c) => c.auth.refreshTokenTtlSeconds, 3600],
    ['PA_BCRYPT_COST', '13', (c) => c.auth.bcryptCost, 13],
    ['PA_ISSUER', 'https://pa.example.com', (c) => c.auth.issuer, 'https://pa.example.com'],
    ['PA_ADMIN_USERNAME', 'root-admin', (c) => c.bootstrap.adminUsername, 'root-admin'],
  ])('reads %s=%s from the environment', (name, value, pick, expected) => {
    expect(pick(loadConfig({ [name]: value }))).toEqual(expected);
  });

  it('ignores empty environment variables', () => {
    expect(loadConfig({ PA_HTTP_PORT: '', DATABASE_URL: '' })).toMatchObject({ http: { port: 8080 }, database: { poolSize: 10 } });
    expect(loadConfig({ DATABASE_URL: '' }).database.url).toBeUndefined();
  });

  it('reads a YAML file named by PA_CONFIG; the environment wins over the file and overrides over both', () => {
    const path = file(['environment: test', 'http:', '  port: 7000', '  host: 0.0.0.0', 'auth:', '  issuer: from-file', '  bcryptCost: 10', 'redis:', '  keyPrefix: "file:"'].join('\n'));
    const fromFile = loadConfig({ PA_CONFIG: path });
    expect(fromFile.environment).toBe('test');
    expect(fromFile.http).toMatchObject({ port: 7000, host: '0.0.0.0' });
    expect(fromFile.auth).toMatchObject({ issuer: 'from-file', bcryptCost: 10, audience: 'pa-api' });
    expect(fromFile.redis.keyPrefix).toBe('file:');

    const withEnv = loadConfig({ PA_CONFIG: path, PA_HTTP_PORT: '7001', PA_ISSUER: 'from-env' });
    expect(withEnv.http).toMatchObject({ port: 7001, host: '0.0.0.0' });
    expect(withEnv.auth).toMatchObject({ issuer: 'from-env', bcryptCost: 10 });

    const withOverrides = loadConfig({ PA_CONFIG: path, PA_HTTP_PORT: '7001' }, { http: { port: 0 }, auth: { bcryptCost: 4 } });
    expect(withOverrides.http).toMatchObject({ port: 0, host: '0.0.0.0' });
    expect(withOverrides.auth).toMatchObject({ issuer: 'from-file', bcryptCost: 4 });
  });

  it('accepts an empty YAML file', () => {
    expect(loadConfig({ PA_CONFIG: file('') }).http.port).toBe(8080);
  });

  it.each([
    ['a list', '- a\n- b\n'],
    ['a scalar', 'just a string\n'],
    ['invalid YAML', 'http: [unclosed\n  port: 1: 2\n'],
  ])('refuses a config file that holds %s with CONFIG_INVALID', (_what, text) => {
    const err = configError(() => loadConfig({ PA_CONFIG: file(text) }));
    expect(err.message).toContain('file-');
  });

  it('refuses a config file that does not exist', () => {
    const err = configError(() => loadConfig({ PA_CONFIG: join(dir, 'missing.yaml') }));
    expect(err.message).toContain('missing.yaml');
  });

  it('reports every problem at once, each with its path', () => {
    const path = file(['logLevel: loud', 'http:', '  trustProxy: 99', 'database:', '  poolSize: 0'].join('\n'));
    const err = configError(() =>
      loadConfig({ PA_CONFIG: path, PA_ENV: 'staging', PA_HTTP_PORT: 'eighty', PA_GRPC_PORT: '70000', DATABASE_URL: 'not a url', PA_BCRYPT_COST: '99', PA_ACCESS_TOKEN_TTL: '5' }),
    );
    expect(err.details.map((d) => d.path)).toEqual(
      ['auth.accessTokenTtlSeconds', 'auth.bcryptCost', 'database.poolSize', 'database.url', 'environment', 'grpc.port', 'http.port', 'http.trustProxy', 'logLevel'].sort((a, b) => a.localeCompare(b)),
    );
    for (const path of ['environment', 'http.port', 'grpc.port', 'database.url', 'auth.bcryptCost', 'logLevel']) expect(err.message).toContain(path);
  });

  it.each([
    ['bootstrap.adminPassword', 'bootstrap:\n  adminPassword: hunter2-hunter2-hunter2\n', 'hunter2-hunter2-hunter2'],
    ['secrets.masterKeys', `secrets:\n  masterKeys:\n    - ${masterKey()}\n`, 'masterKeys'],
  ])('refuses a secret (%s) in the config file, without echoing it', (path, text, secret) => {
    const err = configError(() => loadConfig({ PA_CONFIG: file(text) }));
    expect(err.message).toContain(path);
    if (secret !== 'masterKeys') expect(err.message).not.toContain(secret);
  });

  it('reads PA_ADMIN_PASSWORD, or the file named by PA_ADMIN_PASSWORD_FILE (trailing newline trimmed)', () => {
    expect(loadConfig({ PA_ADMIN_PASSWORD: 'direct-admin-password' }).bootstrap.adminPassword).toBe('direct-admin-password');
    const path = file('admin-password-from-file\n', 'txt');
    expect(loadConfig({ PA_ADMIN_PASSWORD_FILE: path }).bootstrap.adminPassword).toBe('admin-password-from-file');
    // The direct variable wins over the file.
    expect(loadConfig({ PA_ADMIN_PASSWORD: 'direct-admin-password', PA_ADMIN_PASSWORD_FILE: path }).bootstrap.adminPassword).toBe('direct-admin-password');
  });

  it('refuses a PA_ADMIN_PASSWORD_FILE that cannot be read, and an admin password that is too short', () => {
    const missing = configError(() => loadConfig({ PA_ADMIN_PASSWORD_FILE: join(dir, 'no-such-secret') }));
    expect(missing.message).toContain('PA_ADMIN_PASSWORD_FILE');
    const short = configError(() => loadConfig({ PA_ADMIN_PASSWORD: 'short' }));
    expect(short.details.map((d) => d.path)).toEqual(['bootstrap.adminPassword']);
    expect(short.message).not.toContain('short:');
  });

  it('reads PA_MASTER_KEY (comma-separated, first active) and PA_MASTER_KEY_FILE', () => {
    const [a, b] = [masterKey('k2'), masterKey('k1')];
    expect(loadConfig({ PA_MASTER_KEY: `${a}, ${b}` }).secrets.masterKeys).toEqual([a, b]);
    const path = file(`${a}\n`, 'key');
    expect(loadConfig({ PA_MASTER_KEY_FILE: path }).secrets.masterKeys).toEqual([a]);
  });

  it('refuses a malformed master key, reporting its index', () => {
    const err = configError(() => loadConfig({ PA_MASTER_KEY: `${masterKey()},k2:tooshort` }));
    expect(err.details.map((d) => d.path)).toEqual(['secrets.masterKeys.1']);
  });

  describe('gRPC TLS', () => {
    it('reads the listener certificate, key, node CA and binding from the environment', () => {
      const c = loadConfig({ PA_GRPC_TLS_CERT_FILE: '/tls/cp.crt', PA_GRPC_TLS_KEY_FILE: '/tls/cp.key', PA_GRPC_TLS_NODE_CA_FILE: '/tls/nodes-ca.crt', PA_GRPC_TLS_BIND_NODE_ID: 'true', PA_GRPC_PUBLIC_TLS: 'true' });
      expect(c.grpc.tls).toEqual({ certFile: '/tls/cp.crt', keyFile: '/tls/cp.key', nodeCaFile: '/tls/nodes-ca.crt', bindNodeId: true });
      expect(c.grpc.publicTls).toBe(true);
    });

    it('takes the file paths from the YAML file too (they are paths, not secrets)', () => {
      const c = loadConfig({ PA_CONFIG: file('grpc:\n  tls:\n    certFile: /tls/cp.crt\n    keyFile: /tls/cp.key\n') });
      expect(c.grpc.tls).toMatchObject({ certFile: '/tls/cp.crt', keyFile: '/tls/cp.key' });
    });

    it.each([
      ['a certificate without its key', { PA_GRPC_TLS_CERT_FILE: '/tls/cp.crt' }, 'grpc.tls.keyFile', /PA_GRPC_TLS_KEY_FILE is required with PA_GRPC_TLS_CERT_FILE/],
      ['a key without its certificate', { PA_GRPC_TLS_KEY_FILE: '/tls/cp.key' }, 'grpc.tls.certFile', /PA_GRPC_TLS_CERT_FILE is required/],
      ['a node CA without server TLS', { PA_GRPC_TLS_NODE_CA_FILE: '/tls/ca.crt' }, 'grpc.tls.certFile', /mutual TLS/],
      ['node-id binding without a node CA', { PA_GRPC_TLS_CERT_FILE: '/a', PA_GRPC_TLS_KEY_FILE: '/b', PA_GRPC_TLS_BIND_NODE_ID: 'true' }, 'grpc.tls.nodeCaFile', /needs PA_GRPC_TLS_NODE_CA_FILE/],
    ])('refuses %s, naming the setting', (_what, env, path, message) => {
      const err = configError(() => loadConfig(env));
      expect(err.details.map((d) => d.path)).toEqual([path]);
      expect(err.message).toMatch(message);
    });
  });

  describe('production', () => {
    const complete: Env = { PA_ENV: 'production', PA_MASTER_KEY: masterKey(), DATABASE_URL: 'postgres://pa@db:5432/pa', PA_NODE_TOKEN: 'n'.repeat(40) };

    it('accepts a complete production config (bcrypt cost defaults to 12)', () => {
      const c = loadConfig(complete);
      expect(c.environment).toBe('production');
      expect(c.auth.bcryptCost).toBe(12);
    });

    it('requires a master key, DATABASE_URL, a node token and bcrypt cost ≥ 12, reporting all at once', () => {
      const err = configError(() => loadConfig({ PA_ENV: 'production', PA_BCRYPT_COST: '11' }));
      expect(err.details.map((d) => d.path)).toEqual(['auth.bcryptCost', 'database.url', 'nodes.token', 'secrets.masterKeys']);
    });

    it.each([
      ['the master key', 'PA_MASTER_KEY', 'secrets.masterKeys'],
      ['DATABASE_URL', 'DATABASE_URL', 'database.url'],
      ['the node token', 'PA_NODE_TOKEN', 'nodes.token'],
    ])('refuses production without %s', (_what, name, path) => {
      const err = configError(() => loadConfig({ ...complete, [name]: undefined }));
      expect(err.details.map((d) => d.path)).toEqual([path]);
    });

    it('refuses a low bcrypt cost from overrides too', () => {
      const err = configError(() => loadConfig(complete, { auth: { bcryptCost: 4 } }));
      expect(err.details.map((d) => d.path)).toEqual(['auth.bcryptCost']);
    });

    it('does not apply the production rules to other environments', () => {
      expect(loadConfig({ PA_ENV: 'test', PA_BCRYPT_COST: '4' }).auth.bcryptCost).toBe(4);
    });
  });
});
