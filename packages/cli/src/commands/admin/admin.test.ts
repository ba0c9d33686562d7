/**
 * `pa admin …`: each command makes the right REST call and prints its answer.
 * The whole table runs through runCli in this process (same parser, commands
 * and HTTP client, against a fake control plane on a real socket); the
 * commands that read secrets or files from stdin, or stream, also run as the
 * real CLI process.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runCli } from '../../cli';
import { FakeControlPlane, problem } from '../../testing/fake-control-plane';
import { makeConfigDir, runPa, seedLogin } from '../../testing/run-cli';

jest.setTimeout(120_000);

let cp: FakeControlPlane;
let cfg: { dir: string; cleanup: () => void };

const user = { id: 'usr_bob', username: 'bob', email: 'bob@example.com', displayName: 'Bob', disabled: false, roles: ['analyst'], createdAt: '2025-01-02T03:04:05.000Z', updatedAt: '2025-01-02T03:04:05.000Z' };
const role = { id: 'rol_1', name: 'analyst', description: 'Reads reports', permissions: [], builtIn: false, createdAt: 'x', updatedAt: 'x' };
const connection = { id: 'con_9', name: 'reports-db', protocol: 'postgres', host: 'db.internal', port: 5432, tlsMode: 'require', database: 'reports', description: '', tags: { env: 'prod' }, metadata: {}, maxGrantSeconds: 3600, credential: { kind: 'password', username: 'ro' }, createdAt: 'x', updatedAt: 'x' };
const policy = { id: 'pol_1', name: 'analysts', description: 'read only', enabled: true, roles: ['analyst'], selector: { match: 'all', tags: {}, connections: [] }, rules: [{ id: 'r1' }], version: 3, createdAt: 'x', updatedAt: 'x' };
const event = { id: 'evt_1', time: '2025-01-02T03:04:05.000Z', recordedAt: 'x', actor: { id: 'usr_alice', name: 'alice' }, action: 'auth.login', outcome: 'success', target: { type: 'user', id: 'usr_alice' }, connectionId: null, grantId: null, sessionId: null, nodeId: null, request: {}, details: {} };
const page = (items: unknown[], nextCursor: string | null = null) => ({ body: { items, nextCursor } });

beforeEach(async () => {
  cp = await FakeControlPlane.start();
  cfg = makeConfigDir();
  await seedLogin(cfg.dir, cp.url);
  cp.on('GET', '/users', page([user], 'c2'));
  cp.on('POST', '/users', { status: 201, body: user });
  cp.on('GET', '/users/bob', { body: user });
  cp.on('PATCH', '/users/bob', { body: { ...user, disabled: true } });
  cp.on('DELETE', '/users/bob', { status: 204 });
  cp.on('POST', '/users/bob/password', { status: 204 });
  cp.on('GET', '/roles', page([role]));
  cp.on('POST', '/roles', { status: 201, body: role });
  cp.on('DELETE', '/roles/analyst', { status: 204 });
  cp.on('GET', '/connections', (req) => (req.query.scope === 'all' ? page([connection]) : page([])));
  cp.on('POST', '/connections', { status: 201, body: connection });
  cp.on('GET', '/connections/reports-db', { body: connection });
  cp.on('GET', '/connections/nope', problem(404, 'CONNECTION_NOT_FOUND', 'No such connection.'));
  cp.on('DELETE', '/connections/reports-db', { status: 204 });
  cp.on('GET', '/policies', page([policy]));
  cp.on('GET', '/policies/analysts', { body: policy });
  cp.on('POST', '/policies', { status: 201, body: policy });
  cp.on('DELETE', '/policies/analysts', { status: 204 });
  cp.on('POST', '/policies/evaluate', { body: { decision: 'deny', reason: 'DELETE is not allowed by any rule', rule: null, statements: [{ decision: 'deny', kind: 'delete', reason: 'no rule allows delete' }], subject: { user: 'alice', roles: ['analyst'] }, connection: 'reports-db', policy: { hash: 'h', policies: [], rules: 0 } } });
  cp.on('GET', '/grants', page([{ id: 'grt_1', username: 'alice', connectionName: 'reports-db', issuedAt: '2025-01-02T03:04:05.000Z', expiresAt: '2025-01-02T03:19:05.000Z', revokedAt: null, active: true }]));
  cp.on('POST', '/grants/grt_1/revoke', { status: 204 });
  cp.on('GET', '/audit/events', page([event]));
  cp.on('GET', '/audit/export', { contentType: 'application/x-ndjson', body: `${JSON.stringify(event)}\n${JSON.stringify({ ...event, id: 'evt_2' })}\n` });
  cp.on('GET', '/settings', { body: { selfRegistration: false } });
  cp.on('PATCH', '/settings', (req) => ({ body: req.body }));
  cp.on('GET', '/keys', { body: { items: [{ kid: 'k1', use: 'access', alg: 'EdDSA', createdAt: 'x', activatedAt: '2025-01-02T03:04:05.000Z', retiredAt: null }] } });
  cp.on('POST', '/keys/rotate', { body: { kid: 'k2' } });
});
afterEach(async () => {
  await cp.close();
  cfg.cleanup();
});

/** Runs the CLI in process with its own streams. */
const inProcess = async (args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> => {
  const stdin = new PassThrough();
  stdin.end(input);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await runCli(args, { config: { configDir: cfg.dir, defaultServer: cp.url, debug: false }, io: { stdin, stdout, stderr } });
  return { code, stdout: out, stderr: err };
};

const lastCall = () => cp.requests.at(-1);

interface Case {
  args: string[];
  method: string;
  path: string;
  query?: Record<string, string>;
  body?: unknown;
  stdout: RegExp | string;
  input?: string;
}

const cases: Case[] = [
  { args: ['users', 'list', '-q', 'bo', '--limit', '10'], method: 'GET', path: '/users', query: { q: 'bo', limit: '10' }, stdout: /^USERNAME\s+ID\s+ROLES\s+DISABLED\s+EMAIL\s+CREATED\nbob\s+usr_bob\s+analyst\s+no\s+bob@example\.com\s+2025-01-0/ },
  { args: ['users', 'get', 'bob'], method: 'GET', path: '/users/bob', stdout: /^id:\s+usr_bob\nusername:\s+bob\n/ },
  { args: ['users', 'get', 'bob', '--json'], method: 'GET', path: '/users/bob', stdout: `${JSON.stringify(user, null, 2)}\n` },
  { args: ['users', 'create', 'bob', '--role', 'analyst', '-r', 'auditor', '--email', 'bob@example.com', '--password-stdin'], input: 'bob-password-123\n', method: 'POST', path: '/users', body: { username: 'bob', password: 'bob-password-123', roles: ['analyst', 'auditor'], email: 'bob@example.com' }, stdout: 'Created user bob (usr_bob).\n' },
  { args: ['users', 'update', 'bob', '--disable', '--role', 'x', '--email', ''], method: 'PATCH', path: '/users/bob', body: { email: null, roles: ['x'], disabled: true }, stdout: /disabled:\s+true/ },
  { args: ['users', 'delete', 'bob'], method: 'DELETE', path: '/users/bob', stdout: 'Deleted user bob.\n' },
  { args: ['users', 'reset-password', 'bob', '--password-stdin'], input: 'new-password-456', method: 'POST', path: '/users/bob/password', body: { password: 'new-password-456' }, stdout: 'Password of bob reset; their sessions have ended.\n' },
  { args: ['roles', 'list'], method: 'GET', path: '/roles', query: {}, stdout: /^NAME\s+PERMISSIONS\s+BUILT-IN\s+DESCRIPTION\nanalyst\s+-\s+no\s+Reads reports\n$/ },
  { args: ['roles', 'create', 'auditor', '-d', 'Reads the audit trail', '-p', 'audit:read'], method: 'POST', path: '/roles', body: { name: 'auditor', permissions: ['audit:read'], description: 'Reads the audit trail' }, stdout: 'Created role auditor (rol_1).\n' },
  { args: ['roles', 'delete', 'analyst'], method: 'DELETE', path: '/roles/analyst', stdout: 'Deleted role analyst.\n' },
  { args: ['connections', 'list', '--protocol', 'postgres', '--tag', 'env=prod'], method: 'GET', path: '/connections', query: { scope: 'all', protocol: 'postgres', tag: 'env=prod' }, stdout: /reports-db\s+postgres\s+db\.internal:5432\s+reports\s+password\s+env=prod/ },
  { args: ['connections', 'get', 'reports-db'], method: 'GET', path: '/connections/reports-db', stdout: /description:\s+-\n(.|\n)*credential:\s+kind=password, username=ro\n/ },
  {
    args: ['connections', 'create', 'reports-db', '--protocol', 'postgres', '--host', 'db.internal', '--port', '5432', '--database', 'reports', '--tls-mode', 'require', '-t', 'env=prod', '--tag', 'team=bi', '--credential-username', 'ro', '--credential-password-stdin'],
    input: 'backend-secret\n',
    method: 'POST',
    path: '/connections',
    body: { name: 'reports-db', protocol: 'postgres', host: 'db.internal', port: 5432, database: 'reports', tlsMode: 'require', tags: { env: 'prod', team: 'bi' }, credential: { kind: 'password', username: 'ro', password: 'backend-secret' } },
    stdout: 'Created connection reports-db (con_9).\n',
  },
  {
    args: ['connections', 'create', 'wiki', '--protocol', 'http', '--host', 'wiki.internal', '--port', '80', '--credential-header', 'X-Api-Key', '--credential-value-stdin'],
    input: 'k3y',
    method: 'POST',
    path: '/connections',
    body: { name: 'wiki', protocol: 'http', host: 'wiki.internal', port: 80, credential: { kind: 'header', headerName: 'X-Api-Key', value: 'k3y' } },
    stdout: /^Created connection wiki/,
  },
  { args: ['connections', 'delete', 'reports-db'], method: 'DELETE', path: '/connections/reports-db', stdout: 'Deleted connection reports-db.\n' },
  { args: ['policies', 'list'], method: 'GET', path: '/policies', stdout: /analysts\s+yes\s+analyst\s+1\s+3\s+read only/ },
  { args: ['policies', 'get', 'analysts'], method: 'GET', path: '/policies/analysts', stdout: `${JSON.stringify(policy, null, 2)}\n` },
  { args: ['policies', 'get', 'analysts', '--yaml'], method: 'GET', path: '/policies/analysts', stdout: /^id: pol_1\nname: analysts\n/ },
  { args: ['policies', 'delete', 'analysts'], method: 'DELETE', path: '/policies/analysts', stdout: 'Deleted policy analysts.\n' },
  {
    args: ['policies', 'evaluate', '-c', 'reports-db', '-u', 'alice', '--sql', 'DELETE FROM orders'],
    method: 'POST',
    path: '/policies/evaluate',
    body: { connection: 'reports-db', user: 'alice', sql: 'DELETE FROM orders' },
    stdout: 'DENY: DELETE is not allowed by any rule\n  [1] deny  delete  no rule allows delete\n',
  },
  { args: ['policies', 'evaluate', '-c', 'wiki', '-r', 'editor', '-r', 'viewer', '--method', 'post', '--target', '/pages/1'], method: 'POST', path: '/policies/evaluate', body: { connection: 'wiki', roles: ['editor', 'viewer'], http: { method: 'POST', target: '/pages/1' } }, stdout: /^DENY: / },
  { args: ['grants', 'list', '--connection', 'reports-db', '--active'], method: 'GET', path: '/grants', query: { connection: 'reports-db', active: 'true' }, stdout: /^ID\s+USER\s+CONNECTION\s+ISSUED\s+EXPIRES\s+ACTIVE\s+REVOKED\ngrt_1\s+alice\s+reports-db\s+2025-01-0.*\s+yes\s+-\n$/ },
  { args: ['grants', 'revoke', 'grt_1', '--reason', 'left the team'], method: 'POST', path: '/grants/grt_1/revoke', body: { reason: 'left the team' }, stdout: 'Revoked grant grt_1.\n' },
  { args: ['audit', 'search', '--actor', 'alice', '--action', 'auth.*', '--outcome', 'success', '--since', '2025-01-01T00:00:00Z', '--json'], method: 'GET', path: '/audit/events', query: { actor: 'alice', action: 'auth.*', outcome: 'success', from: '2025-01-01T00:00:00.000Z' }, stdout: `${JSON.stringify([event], null, 2)}\n` },
  { args: ['audit', 'search'], method: 'GET', path: '/audit/events', query: {}, stdout: /^TIME\s+ACTOR\s+ACTION\s+OUTCOME\s+TARGET\s+ID\n.*alice\s+auth\.login\s+success\s+user:usr_alice\s+evt_1\n$/ },
  { args: ['settings', 'set', 'selfRegistration=true', 'note=hello'], method: 'PATCH', path: '/settings', body: { selfRegistration: true, note: 'hello' }, stdout: 'selfRegistration:  true\nnote:              hello\n' },
  { args: ['keys', 'list'], method: 'GET', path: '/keys', stdout: /^KID\s+USE\s+ALG\s+ACTIVATED\s+RETIRED\nk1\s+access\s+EdDSA\s+2025-01-0.*\s+-\n$/ },
  { args: ['keys', 'rotate', '--use', 'grant'], method: 'POST', path: '/keys/rotate', body: { use: 'grant' }, stdout: 'New grant signing key: k2\n' },
];

describe('pa admin (in process, real HTTP)', () => {
  it.each(cases.map((c) => [c.args.join(' '), c] as const))('%s', async (_name, c) => {
    const r = await inProcess(['admin', ...c.args], c.input);
    expect(r.stderr).toBe(c.args.includes('--limit') ? 'More: add --cursor c2\n' : '');
    expect(r.code).toBe(0);
    const call = lastCall();
    expect(`${call?.method} ${call?.path}`).toBe(`${c.method} ${c.path}`);
    expect(call?.headers.authorization).toMatch(/^Bearer at_/);
    if (c.query) expect(call?.query).toEqual(c.query);
    if (c.body !== undefined) expect(call?.body).toEqual(c.body);
    if (typeof c.stdout === 'string') expect(r.stdout).toBe(c.stdout);
    else expect(r.stdout).toMatch(c.stdout);
  });

  it('turns --since 2h into a time two hours back', async () => {
    const before = Date.now();
    await inProcess(['admin', 'audit', 'search', '--since', '2h']);
    const from = Date.parse(String(lastCall()?.query.from));
    expect(from).toBeGreaterThanOrEqual(before - 2 * 3_600_000 - 1000);
    expect(from).toBeLessThanOrEqual(Date.now() - 2 * 3_600_000 + 1000);
  });

  it.each([
    [['users', 'update', 'bob'], 'nothing to change'],
    [['users', 'update', 'bob', '--enable', '--disable'], 'give --disable or --enable, not both'],
    [['connections', 'create', 'x', '--protocol', 'tcp'], '--protocol, --host and --port are required'],
    [['connections', 'create', 'x', '--protocol', 'http', '--host', 'h', '--port', '1', '--credential-value-stdin'], '--credential-value-stdin needs --credential-header'],
    [['policies', 'evaluate', '-c', 'db', '--sql', 'x'], 'give either --user or --role'],
    [['policies', 'evaluate', '-c', 'db', '-u', 'a', '--method', 'GET'], '--method and --target go together'],
    [['policies', 'create'], 'give the policy document with -f FILE'],
    [['audit', 'search', '--since', 'yesterday'], '--since takes a time'],
    [['users', 'create', 'bob'], 'the input is not a terminal: pass the secret on stdin with --password-stdin'],
  ])('refuses %j before calling the API', async (args, message) => {
    const before = cp.requests.length;
    const r = await inProcess(['admin', ...args]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
    expect(cp.requests.length).toBe(before);
  });

  it('maps API errors to messages and exit codes (not found 4, permission denied 3, validation 1 with field details)', async () => {
    const missing = await inProcess(['admin', 'connections', 'get', 'nope']);
    expect(missing).toMatchObject({ code: 4, stderr: 'pa: No such connection.\n' });
    cp.on('GET', '/users', problem(403, 'PERMISSION_DENIED', 'You need the users:read permission to do this.'));
    const denied = await inProcess(['admin', 'users', 'list']);
    expect(denied).toMatchObject({ code: 3, stderr: 'pa: permission denied: You need the users:read permission to do this.\n' });
    cp.on('POST', '/roles', { status: 400, contentType: 'application/problem+json', body: { code: 'VALIDATION_FAILED', detail: 'The request is not valid.', status: 400, errors: [{ path: 'body.name', message: 'letters, digits, _ . -' }] } });
    const invalid = await inProcess(['admin', 'roles', 'create', 'bad name']);
    expect(invalid).toMatchObject({ code: 1, stderr: 'pa: The request is not valid.\n  body.name: letters, digits, _ . -\n' });
  });
});

describe('pa admin (real CLI process)', () => {
  it('creates a user with the password from stdin', async () => {
    const r = await runPa(['admin', 'users', 'create', 'bob', '--role', 'analyst', '--password-stdin'], { configDir: cfg.dir, input: 'bob-password-123\n' });
    expect(r).toMatchObject({ code: 0, stdout: 'Created user bob (usr_bob).\n', stderr: '' });
    expect(cp.callsTo('POST', '/users')[0]?.body).toEqual({ username: 'bob', password: 'bob-password-123', roles: ['analyst'] });
  });

  it('creates a policy from a YAML file and from JSON on stdin', async () => {
    const file = join(cfg.dir, '..', 'policy.yaml');
    writeFileSync(file, 'name: analysts\nroles: [analyst]\nselector: {match: all, tags: {env: prod}}\nrules:\n  - {name: read, effect: allow, type: sql, kinds: [select]}\n');
    const fromFile = await runPa(['admin', 'policies', 'create', '-f', file], { configDir: cfg.dir });
    expect(fromFile).toMatchObject({ code: 0, stdout: 'Created policy analysts (pol_1), version 3.\n' });
    const doc = { name: 'analysts', roles: ['analyst'], selector: { match: 'all', tags: { env: 'prod' } }, rules: [{ name: 'read', effect: 'allow', type: 'sql', kinds: ['select'] }] };
    expect(cp.callsTo('POST', '/policies')[0]?.body).toEqual(doc);
    const fromStdin = await runPa(['admin', 'policies', 'create', '-f', '-'], { configDir: cfg.dir, input: JSON.stringify(doc) });
    expect(fromStdin.code).toBe(0);
    expect(cp.callsTo('POST', '/policies')[1]?.body).toEqual(doc);
  });

  it('streams the audit export to stdout and to a 0600 file', async () => {
    const r = await runPa(['admin', 'audit', 'export', '--actor', 'alice'], { configDir: cfg.dir });
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(['evt_1', 'evt_2']);
    expect(cp.callsTo('GET', '/audit/export')[0]?.query).toEqual({ actor: 'alice' });
    const file = join(cfg.dir, '..', 'audit.jsonl');
    const toFile = await runPa(['admin', 'audit', 'export', '-o', file], { configDir: cfg.dir });
    expect(toFile).toMatchObject({ code: 0, stdout: '', stderr: `Wrote 2 events to ${file}.\n` });
    expect(readFileSync(file, 'utf8')).toBe(r.stdout);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});
