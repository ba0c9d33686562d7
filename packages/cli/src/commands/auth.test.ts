/**
 * `pa login/logout/status` and the token plumbing, run as the real CLI process
 * against a fake control plane on a real socket.
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeControlPlane } from '../testing/fake-control-plane';
import { cliEnv, makeConfigDir, PA_BIN, runPa } from '../testing/run-cli';

jest.setTimeout(120_000);

let cp: FakeControlPlane;
let cfg: { dir: string; cleanup: () => void };

beforeEach(async () => {
  cp = await FakeControlPlane.start();
  cfg = makeConfigDir();
});
afterEach(async () => {
  await cp.close();
  cfg.cleanup();
});

const pa = (args: string[], input?: string) => runPa(args, { configDir: cfg.dir, ...(input !== undefined ? { input } : {}) });
const login = () => pa(['login', '--server', cp.url, '-u', 'alice', '--password-stdin'], 'alice-password-1\n');
const stored = () => JSON.parse(readFileSync(join(cfg.dir, 'config.json'), 'utf8')) as { currentContext: string; contexts: Record<string, Record<string, string>> };
const ctxName = () => `alice@${new URL(cp.url).host}`;

describe('pa login', () => {
  it('logs in with --password-stdin and stores the tokens in a 0600 file in a 0700 directory', async () => {
    const r = await login();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Logged in to ${cp.url} as alice (context "${ctxName()}").\n`);
    expect(statSync(cfg.dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(cfg.dir, 'config.json')).mode & 0o777).toBe(0o600);
    const c = stored();
    expect(c.currentContext).toBe(ctxName());
    expect(c.contexts[ctxName()]).toMatchObject({ server: cp.url, user: { id: 'usr_alice', username: 'alice' }, accessToken: expect.stringMatching(/^at_/), refreshToken: expect.stringMatching(/^rt_/) });
    expect(cp.callsTo('POST', '/auth/login')[0]?.body).toEqual({ username: 'alice', password: 'alice-password-1' });
  });

  it('reports wrong credentials with exit code 2 and stores nothing', async () => {
    const r = await pa(['login', '--server', cp.url, '-u', 'alice', '--password-stdin'], 'wrong\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('pa: login failed: Invalid username or password.\n');
    expect(() => stored()).toThrow();
  });

  it('says how to fix an unreachable control plane (exit 5)', async () => {
    const url = cp.url;
    await cp.close();
    const r = await pa(['login', '--server', url, '-u', 'alice', '--password-stdin'], 'x\n');
    expect(r.code).toBe(5);
    expect(r.stderr).toBe(`pa: cannot reach ${url}: is it running? (pa login --server URL)\n`);
    cp = await FakeControlPlane.start();
  });

  it('refuses to prompt when stdin is not a terminal', async () => {
    const r = await pa(['login', '--server', cp.url, '-u', 'alice'], '');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--password-stdin');
  });

  it('asks for username and password on a terminal, without echoing the password (pseudo-TTY via script)', async () => {
    const cmd = `${process.execPath} ${PA_BIN} login --server ${cp.url}`;
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: cliEnv(cfg.dir), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const seen = (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${re} in ${JSON.stringify(out)}`)), 20_000);
        const check = () => {
          if (re.test(out)) {
            clearTimeout(timer);
            resolve();
          } else setTimeout(check, 20);
        };
        check();
      });
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    await seen(/Username: /);
    child.stdin.write('alice\r');
    await seen(/Password: /);
    child.stdin.write('alice-password-1\r');
    const code = await exited;
    expect(out).toContain('Logged in to');
    expect(out).toContain('alice'); // the username is echoed as typed
    expect(out).not.toContain('alice-password-1');
    expect(code).toBe(0);
    expect(stored().contexts[ctxName()]?.accessToken).toMatch(/^at_/);
  });
});

describe('token refresh', () => {
  it('refreshes before a call when the access token expires within 30 s, and stores the new pair', async () => {
    cp.accessTtlSeconds = 10;
    await login();
    const before = stored().contexts[ctxName()] as Record<string, string>;
    const r = await pa(['list', '-q']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('reports-db\nwiki\necho\n');
    expect(cp.requests.map((q) => `${q.method} ${q.path}`)).toEqual(['POST /auth/login', 'POST /auth/refresh', 'GET /connections']);
    expect(cp.callsTo('POST', '/auth/refresh')[0]?.body).toEqual({ refreshToken: before.refreshToken });
    const after = stored().contexts[ctxName()] as Record<string, string>;
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(cp.callsTo('GET', '/connections')[0]?.headers.authorization).toBe(`Bearer ${after.accessToken}`);
    expect(statSync(join(cfg.dir, 'config.json')).mode & 0o777).toBe(0o600);
  });

  it('refreshes and retries once after a 401 AUTH_TOKEN_EXPIRED', async () => {
    await login();
    cp.expireAccessTokens();
    const r = await pa(['list', '-q']);
    expect(r.code).toBe(0);
    expect(cp.requests.slice(1).map((q) => `${q.method} ${q.path}`)).toEqual(['GET /connections', 'POST /auth/refresh', 'GET /connections']);
  });

  it('treats a spent refresh token as an ended session: exit 2, tokens forgotten', async () => {
    cp.accessTtlSeconds = 10;
    await login();
    // Someone else spends the refresh token first (a copied config file, say).
    const spent = stored().contexts[ctxName()]?.refreshToken;
    await fetch(`${cp.url}/api/v1/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: spent }) });
    const r = await pa(['list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('pa: session expired: run `pa login` (The refresh token was already used; the session has been revoked.)\n');
    const ctx = stored().contexts[ctxName()];
    expect(ctx?.accessToken).toBeUndefined();
    expect(ctx?.refreshToken).toBeUndefined();
    expect(ctx?.server).toBe(cp.url);
    const again = await pa(['list']);
    expect(again.code).toBe(2);
    expect(again.stderr).toBe(`pa: not logged in to ${cp.url}: run \`pa login\`\n`);
  });

  it('never spends one refresh token twice when several pa processes refresh at once', async () => {
    cp.accessTtlSeconds = 10;
    await login();
    cp.accessTtlSeconds = 900;
    const results = await Promise.all([pa(['list', '-q']), pa(['list', '-q']), pa(['list', '-q']), pa(['status'])]);
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    expect(cp.refreshes).toBe(1);
    expect(cp.callsTo('POST', '/auth/refresh')).toHaveLength(1);
    expect(cp.isSessionAlive(stored().contexts[ctxName()]?.accessToken as string)).toBe(true);
  });
});

describe('pa logout', () => {
  it('ends the session on the server and forgets the tokens', async () => {
    await login();
    const token = stored().contexts[ctxName()]?.accessToken as string;
    const r = await pa(['logout']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Logged out of ${cp.url} (context "${ctxName()}").\n`);
    expect(cp.callsTo('POST', '/auth/logout')[0]?.headers.authorization).toBe(`Bearer ${token}`);
    expect(cp.isSessionAlive(token)).toBe(false);
    expect(stored().contexts[ctxName()]?.accessToken).toBeUndefined();
    const list = await pa(['list']);
    expect(list.code).toBe(2);
    expect(list.stderr).toContain('run `pa login`');
  });

  it('forgets the tokens even when the server cannot be reached, and says so', async () => {
    await login();
    await cp.close();
    const r = await pa(['logout']);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('forgot the tokens here, but could not end the session');
    expect(stored().contexts[ctxName()]?.refreshToken).toBeUndefined();
    cp = await FakeControlPlane.start();
  });
});

describe('pa status / whoami', () => {
  it('shows the user, roles, control plane and token expiry', async () => {
    await login();
    const r = await pa(['whoami']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Context:        ${ctxName()}`);
    expect(r.stdout).toContain(`Control plane:  ${cp.url}`);
    expect(r.stdout).toContain('User:           alice (usr_alice)');
    expect(r.stdout).toContain('Roles:          analyst');
    expect(r.stdout).toMatch(/Access token:\s+expires in 1[45]m/);
    expect(r.stdout).toContain('No active tunnels.');
    const json = JSON.parse((await pa(['status', '--json'])).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ context: ctxName(), server: cp.url, loggedIn: true, user: { username: 'alice', roles: ['analyst'] }, tunnels: [] });
  });

  it('exits 2 when not logged in', async () => {
    const r = await pa(['status']);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('Status:   not logged in: run `pa login --server URL`');
  });
});

describe('a corrupt config file', () => {
  it('is reported with what to do', async () => {
    await login();
    writeFileSync(join(cfg.dir, 'config.json'), '{"contexts": [');
    const r = await pa(['list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`pa: the config file ${join(cfg.dir, 'config.json')} is not valid (it is not valid JSON).\nFix it by hand, or move it away and run \`pa login\` again.\n`);
  });
});
