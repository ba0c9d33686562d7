import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { ControlPlane } from '@pa/control-plane';
import type { Logger } from '@pa/kit';
import type { DemoBackends } from './demo-backends';

const DEMO_DB = 'demo';
const DEMO_ROLE = 'demo_reader';

/**
 * Creates (once) the demo database on the same PostgreSQL server: a few tables
 * and a least-privileged login role that may only read them — the role the
 * proxy logs in as, as SECURITY.md asks. Returns its password (new or kept).
 */
const ensureDemoDatabase = async (adminUrl: string, password: string): Promise<void> => {
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    if (!(await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DEMO_DB])).rowCount) await admin.query(`CREATE DATABASE ${DEMO_DB}`);
    const role = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [DEMO_ROLE]);
    const literal = `'${password.replace(/'/g, "''")}'`;
    await admin.query(`${role.rowCount ? 'ALTER' : 'CREATE'} ROLE ${DEMO_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD ${literal}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${DEMO_DB}`;
  const db = new Client({ connectionString: url.toString() });
  await db.connect();
  try {
    await db.query(`
      CREATE TABLE IF NOT EXISTS customers (id int PRIMARY KEY, name text NOT NULL, country text NOT NULL);
      CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, customer_id int REFERENCES customers, total numeric(10,2) NOT NULL, placed_at date NOT NULL);
      CREATE TABLE IF NOT EXISTS payment_secrets (customer_id int PRIMARY KEY, card_number text NOT NULL);
      INSERT INTO customers VALUES (1, 'Ada', 'UK'), (2, 'Grace', 'US'), (3, 'Linus', 'FI') ON CONFLICT DO NOTHING;
      INSERT INTO orders VALUES (10, 1, 120.50, '2026-11-01'), (11, 2, 75.00, '2026-11-02'), (12, 1, 9.99, '2026-11-20') ON CONFLICT DO NOTHING;
      INSERT INTO payment_secrets VALUES (1, '4111-1111-1111-1111') ON CONFLICT DO NOTHING;
      REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${DEMO_ROLE};
      REVOKE CREATE ON SCHEMA public FROM PUBLIC;
      GRANT USAGE ON SCHEMA public TO ${DEMO_ROLE};
      GRANT SELECT ON customers, orders, payment_secrets TO ${DEMO_ROLE};
    `);
  } finally {
    await db.end();
  }
};

/** A system actor for changes the runner makes itself. */
const SYSTEM = { userId: 'system', username: 'embedded-runner', roles: [], permissions: new Set<never>(), sessionId: 'system' } as const;

/**
 * Seeds the demo: connections to the demo backends (ports refreshed every
 * start), the `developer` role, and policies for it and for `admin`. Existing
 * objects are updated, never duplicated.
 */
export const seedDemo = async (cp: ControlPlane, backends: DemoBackends, databaseUrl: string | null, logger: Logger): Promise<string[]> => {
  const meta = { requestId: 'embedded-runner' };
  const upsert = async (name: string, body: Parameters<ControlPlane['connections']['create']>[0]) => {
    const existing = await cp.connections.get(name).catch(() => null);
    if (existing) {
      const { credential: _c, ...rest } = body;
      return cp.connections.update(existing.id, { host: rest.host, port: rest.port, ...(body.credential && !existing.credential ? { credential: body.credential } : {}) }, SYSTEM, meta);
    }
    return cp.connections.create(body, SYSTEM, meta);
  };
  const seeded: string[] = [];
  await upsert('demo-api', {
    name: 'demo-api',
    protocol: 'http',
    host: '127.0.0.1',
    port: backends.httpPort,
    description: 'Demo HTTP API (GET /api/** is allowed; /admin is not)',
    tags: { env: 'demo', kind: 'api' },
    credential: { kind: 'header', headerName: 'X-Demo-Token', value: randomBytes(16).toString('base64url') },
  });
  seeded.push('demo-api');
  await upsert('demo-echo', { name: 'demo-echo', protocol: 'tcp', host: '127.0.0.1', port: backends.tcpPort, description: 'Demo TCP echo service', tags: { env: 'demo', kind: 'tcp' } });
  seeded.push('demo-echo');
  if (databaseUrl) {
    try {
      const existing = await cp.connections.get('demo-db').catch(() => null);
      const password = randomBytes(18).toString('base64url');
      if (!existing) {
        await ensureDemoDatabase(databaseUrl, password);
        const u = new URL(databaseUrl);
        await cp.connections.create(
          { name: 'demo-db', protocol: 'postgres', host: u.hostname, port: Number(u.port || 5432), database: DEMO_DB, description: 'Demo PostgreSQL database (read-only role; payment_secrets is off limits)', tags: { env: 'demo', kind: 'db' }, credential: { kind: 'password', username: DEMO_ROLE, password } },
          SYSTEM,
          meta,
        );
      }
      seeded.push('demo-db');
    } catch (err) {
      logger.warn('Demo database not set up (needs a superuser connection).', { err });
    }
  }
  if (!(await cp.roles.get('developer').catch(() => null))) {
    await cp.roles.create({ name: 'developer', description: 'Demo role: reaches the demo connections under the demo policies', permissions: [] }, SYSTEM, meta);
  }
  const policies = [
    {
      name: 'demo-api-read',
      description: 'GET anything under /api on the demo API',
      enabled: true,
      roles: ['developer', 'admin'],
      selector: { match: 'all' as const, tags: { env: 'demo', kind: 'api' }, connections: [] },
      rules: [{ id: 'get-api', name: 'GET /api/**', effect: 'allow' as const, type: 'http' as const, methods: ['GET' as const, 'HEAD' as const], paths: ['/api/**'] }],
    },
    {
      name: 'demo-echo',
      description: 'Raw TCP to the echo service',
      enabled: true,
      roles: ['developer', 'admin'],
      selector: { match: 'all' as const, tags: { env: 'demo', kind: 'tcp' }, connections: [] },
      rules: [{ id: 'all', name: 'any bytes', effect: 'allow' as const, type: 'all' as const }],
    },
    {
      name: 'demo-db-analyst',
      description: 'Read the demo database, except payment secrets',
      enabled: true,
      roles: ['developer', 'admin'],
      selector: { match: 'all' as const, tags: { env: 'demo', kind: 'db' }, connections: [] },
      rules: [
        { id: 'read', name: 'read-only queries', effect: 'allow' as const, type: 'sql' as const, kinds: ['select' as const, 'show' as const, 'set' as const, 'reset' as const, 'transaction' as const, 'explain' as const] },
        { id: 'no-secrets', name: 'no payment secrets', effect: 'deny' as const, type: 'sql' as const, relations: ['payment_secrets', '*.payment_secrets'] },
      ],
    },
  ];
  for (const p of policies) {
    if (!(await cp.policies.get(p.name).catch(() => null))) await cp.policies.create(p, SYSTEM, meta);
  }
  return seeded;
};
