import { createServer, type Server, type Socket } from 'node:net';
import { type AppError } from '@pa/kit';
import { createTestPki, freePort, startThrowawayPostgres, testDatabaseUrl, type ThrowawayPostgres } from '@pa/testing';
import { Client } from 'pg';
import { type BackendMessage } from 'pg-protocol/dist/messages';
import { sendCancel } from './cancel';
import { CappedBackendParser } from './capped-backend-parser';
import { type BackendConnection, type ConnectBackendOptions, connectBackend } from './connect-backend';
import * as frontend from './frontend-builders';

// --- helpers -----------------------------------------------------------------

interface PkiPems {
  readonly ca: string;
  readonly otherCa: string;
  readonly cert: string;
  readonly key: string;
}

/** A test CA, a server certificate for "localhost" signed by it, and an unrelated CA (the shared test PKI). */
const makePki = (): PkiPems => {
  const pki = createTestPki();
  try {
    const ca = pki.ca('pa test CA');
    const other = pki.ca('pa other CA');
    const server = pki.issue(ca, 'localhost');
    return { ca: ca.cert, otherCa: other.cert, cert: server.cert, key: server.key };
  } finally {
    pki.cleanup();
  }
};

/** Sends a simple query on a connected session and collects messages up to ReadyForQuery. */
const simpleQuery = (conn: BackendConnection, sql: string): Promise<BackendMessage[]> =>
  new Promise((resolve, reject) => {
    const parser = new CappedBackendParser();
    const out: BackendMessage[] = [];
    const { socket } = conn;
    const onData = (chunk: Buffer): void => {
      const err = parser.parse(chunk, (m) => out.push(m));
      if (err) return finish(err);
      if (out.some((m) => m.name === 'readyForQuery')) finish(null);
    };
    const finish = (err: Error | null): void => {
      socket.off('data', onData);
      socket.off('error', finish);
      socket.pause();
      if (err) reject(err);
      else resolve(out);
    };
    socket.on('data', onData);
    socket.on('error', finish);
    socket.write(frontend.query(sql));
    socket.resume();
  });

/** Polls pg_stat_activity (from another session) until `pid` runs pg_sleep. */
const waitUntilActive = async (url: string, pid: number): Promise<void> => {
  const admin = new Client({ connectionString: url });
  await admin.connect();
  try {
    for (;;) {
      const r = await admin.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep%'",
        [pid],
      );
      if (r.rows[0]?.n === 1) return;
    }
  } finally {
    await admin.end();
  }
};

const close = (conn: BackendConnection): Promise<void> =>
  new Promise((resolve) => {
    conn.socket.once('close', () => resolve());
    conn.socket.end(frontend.terminate());
    conn.socket.resume();
  });

const expectAppError = async (p: Promise<unknown>, code: string, backendSqlstate?: string): Promise<AppError> => {
  const err = (await p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e,
  )) as AppError;
  expect(err.name).toBe('AppError');
  expect(err.code).toBe(code);
  if (backendSqlstate) expect(err.meta.backendSqlstate).toBe(backendSqlstate);
  return err;
};

// --- servers -----------------------------------------------------------------

const users = [
  { name: 'alice', password: 'correct horse' },
  { name: 'bård', password: 'pässwörd\u00a0ﬁ' }, // non-ASCII: exercises SASLprep on both sides
];
let pki: PkiPems;
let scram: ThrowawayPostgres;
let md5: ThrowawayPostgres;
let cleartext: ThrowawayPostgres;
let tlsServer: ThrowawayPostgres;

beforeAll(async () => {
  pki = makePki();
  [scram, md5, cleartext, tlsServer] = await Promise.all([
    startThrowawayPostgres({ auth: 'scram-sha-256', users }),
    startThrowawayPostgres({ auth: 'md5', users }),
    startThrowawayPostgres({ auth: 'password', users }),
    startThrowawayPostgres({ auth: 'scram-sha-256', users, ssl: { cert: pki.cert, key: pki.key } }),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([scram, md5, cleartext, tlsServer].map((s) => s?.stop()));
});

const opts = (server: ThrowawayPostgres, extra: Partial<ConnectBackendOptions> = {}): ConnectBackendOptions => ({
  host: server.host,
  port: server.port,
  user: 'alice',
  password: 'correct horse',
  database: 'postgres',
  tls: { mode: 'disable' },
  connectTimeoutMs: 10_000,
  ...extra,
});

// --- tests -------------------------------------------------------------------

describe('connectBackend authentication', () => {
  it.each([
    ['SCRAM-SHA-256', () => scram, 'scram-sha-256'],
    ['MD5', () => md5, 'md5'],
    ['cleartext', () => cleartext, 'password'],
  ] as const)('logs in with %s and leaves a usable session', async (_name, server, method) => {
    const conn = await connectBackend(opts(server(), { params: { application_name: 'pa-test' } }));
    try {
      expect(conn.authMethod).toBe(method);
      expect(conn.transactionStatus).toBe('I');
      expect(conn.parameters.get('client_encoding')).toBe('UTF8');
      expect(conn.parameters.get('standard_conforming_strings')).toBe('on');
      expect(conn.parameters.get('application_name')).toBe('pa-test');
      expect(conn.parameters.get('server_version')).toMatch(/^18/);
      expect(conn.backendKey?.processId).toBeGreaterThan(0);
      expect(conn.backendKey?.secretKey).toHaveLength(4);
      expect(conn.leftover).toHaveLength(0);
      expect(conn.isEncrypted).toBe(false);
      const msgs = await simpleQuery(conn, 'SELECT current_user');
      expect(msgs.map((m) => m.name)).toEqual(['rowDescription', 'dataRow', 'commandComplete', 'readyForQuery']);
      expect(msgs[1]).toMatchObject({ fields: ['alice'] });
    } finally {
      await close(conn);
    }
  });

  it('applies SASLprep to a non-ASCII SCRAM password', async () => {
    const conn = await connectBackend(opts(scram, { user: 'bård', password: 'pässwörd\u00a0ﬁ' }));
    await close(conn);
  });

  it.each([
    ['SCRAM-SHA-256', () => scram],
    ['MD5', () => md5],
    ['cleartext', () => cleartext],
  ] as const)('refuses a wrong password with %s: PG_BACKEND_AUTH_FAILED carrying the backend SQLSTATE', async (_name, server) => {
    const err = await expectAppError(connectBackend(opts(server(), { password: 'wrong' })), 'PG_BACKEND_AUTH_FAILED', '28P01');
    expect(err.message).not.toContain('alice');
  });

  it('refuses an authentication method that is not allowed, before sending any password', async () => {
    await expectAppError(connectBackend(opts(cleartext, { authMethods: ['scram-sha-256'] })), 'PG_BACKEND_AUTH_FAILED');
    await expectAppError(connectBackend(opts(md5, { authMethods: ['scram-sha-256'] })), 'PG_BACKEND_AUTH_FAILED');
  });

  it('reports an unknown database as PG_BACKEND_REJECTED with SQLSTATE 3D000', async () => {
    await expectAppError(connectBackend(opts(scram, { database: 'no_such_db' })), 'PG_BACKEND_REJECTED', '3D000');
  });

  it('connects to the shared test PostgreSQL (TEST_DATABASE_URL)', async () => {
    const url = new URL(testDatabaseUrl());
    const conn = await connectBackend({
      host: url.hostname,
      port: Number(url.port || 5432),
      user: decodeURIComponent(url.username || 'postgres'),
      password: decodeURIComponent(url.password),
      database: url.pathname.slice(1) || 'postgres',
      tls: { mode: 'disable' },
    });
    try {
      expect(['trust', 'scram-sha-256', 'md5', 'password']).toContain(conn.authMethod);
      const msgs = await simpleQuery(conn, 'SELECT 1 AS one');
      expect(msgs[1]).toMatchObject({ fields: ['1'] });
    } finally {
      await close(conn);
    }
  });
});

describe('connectBackend TLS', () => {
  it('verify-full accepts the test CA and the right host name', async () => {
    const conn = await connectBackend(opts(tlsServer, { tls: { mode: 'verify-full', ca: pki.ca, servername: 'localhost' } }));
    try {
      expect(conn.isEncrypted).toBe(true);
      expect(conn.parameters.get('server_version')).toMatch(/^18/);
      const msgs = await simpleQuery(conn, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      expect(msgs[1]).toMatchObject({ fields: ['t'] });
    } finally {
      await close(conn);
    }
  });

  it('verify-full refuses a wrong host name', async () => {
    await expectAppError(connectBackend(opts(tlsServer, { tls: { mode: 'verify-full', ca: pki.ca, servername: 'db.example.org' } })), 'PG_BACKEND_TLS_FAILED');
    // The certificate names "localhost", not the address dialled.
    await expectAppError(connectBackend(opts(tlsServer, { tls: { mode: 'verify-full', ca: pki.ca } })), 'PG_BACKEND_TLS_FAILED');
  });

  it('verify-full and verify-ca refuse a certificate from another CA', async () => {
    await expectAppError(connectBackend(opts(tlsServer, { tls: { mode: 'verify-full', ca: pki.otherCa, servername: 'localhost' } })), 'PG_BACKEND_TLS_FAILED');
    await expectAppError(connectBackend(opts(tlsServer, { tls: { mode: 'verify-ca', ca: pki.otherCa } })), 'PG_BACKEND_TLS_FAILED');
  });

  it('verify-ca does not check the host name; require checks nothing but still encrypts', async () => {
    const a = await connectBackend(opts(tlsServer, { tls: { mode: 'verify-ca', ca: pki.ca, servername: 'db.example.org' } }));
    await close(a);
    const b = await connectBackend(opts(tlsServer, { tls: { mode: 'require', ca: pki.otherCa } }));
    expect(b.isEncrypted).toBe(true);
    await close(b);
  });

  it('refuses a server without TLS when TLS is required', async () => {
    const err = await expectAppError(connectBackend(opts(scram, { tls: { mode: 'require' } })), 'PG_BACKEND_TLS_FAILED');
    expect(err.message).toMatch(/does not accept TLS/);
  });
});

describe('connectBackend failures', () => {
  it('reports a refused connection as PG_BACKEND_UNAVAILABLE', async () => {
    const port = await freePort();
    await expectAppError(connectBackend(opts(scram, { port })), 'PG_BACKEND_UNAVAILABLE');
  });

  it('reports a server that never answers as PG_BACKEND_TIMEOUT and closes the socket', async () => {
    const sockets: Socket[] = [];
    const server: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      await expectAppError(connectBackend(opts(scram, { port, connectTimeoutMs: 200 })), 'PG_BACKEND_TIMEOUT');
      const [peer] = sockets;
      if (peer && !peer.destroyed) await new Promise((r) => peer.once('close', r).resume());
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('sendCancel', () => {
  it.each([
    ['plain', () => scram, { mode: 'disable' } as const],
    ['over TLS', () => tlsServer, { mode: 'verify-full', servername: 'localhost' } as const],
  ])('cancels a running pg_sleep (%s)', async (_name, server, tlsMode) => {
    const tls = tlsMode.mode === 'disable' ? tlsMode : { ...tlsMode, ca: pki.ca };
    const srv = server();
    const conn = await connectBackend(opts(srv, { tls }));
    try {
      const key = conn.backendKey;
      if (!key) throw new Error('no backend key');
      const started = Date.now();
      const result = simpleQuery(conn, 'SELECT pg_sleep(30)');
      // A cancel that arrives before the query runs is ignored by PostgreSQL: wait until it runs.
      await waitUntilActive(srv.url, key.processId);
      await sendCancel({ host: srv.host, port: srv.port, tls, processId: key.processId, secretKey: key.secretKey });
      const msgs = await result;
      const error = msgs.find((m) => m.name === 'error');
      expect(error).toMatchObject({ code: '57014' });
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(msgs.at(-1)).toMatchObject({ name: 'readyForQuery', status: 'I' });
    } finally {
      await close(conn);
    }
  });
});
