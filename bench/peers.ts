/**
 * The peers a user would pick instead of the data-plane hop, from Debian
 * packages (`apt-get install -y haproxy nginx pgbouncer wrk`), each started
 * from a config in a temp directory on loopback ports and stopped afterwards.
 * A missing binary is reported as a skip, never a failure.
 *
 * Each proxy runs one worker (haproxy nbthread 1, nginx worker_processes 1)
 * like the single-threaded Node.js node it is compared with.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, run, startDaemon, waitPort, which, type Daemon } from './lib';

export interface Tools {
  haproxy: string | null;
  nginx: string | null;
  pgbouncer: string | null;
  wrk: string | null;
  pgbench: string | null;
  psql: string | null;
}

export const findTools = (dirs: readonly string[]): Tools => ({
  haproxy: which('haproxy', dirs),
  nginx: which('nginx', dirs),
  pgbouncer: which('pgbouncer', dirs),
  wrk: which('wrk', dirs),
  pgbench: which('pgbench', dirs),
  psql: which('psql', dirs),
});

/** First line mentioning a version, from `cmd args` (stdout or stderr). */
export const versionOf = async (cmd: string | null, args: readonly string[]): Promise<string | null> => {
  if (!cmd) return null;
  const r = await run(cmd, args, 5000);
  const text = `${r.stdout}\n${r.stderr}`;
  const line = text.split('\n').find((l) => /\d+\.\d+/.test(l));
  return line ? line.trim().slice(0, 120) : null;
};

export const toolVersions = async (t: Tools): Promise<Record<string, string | null>> => ({
  haproxy: await versionOf(t.haproxy, ['-v']),
  nginx: await versionOf(t.nginx, ['-v']),
  pgbouncer: await versionOf(t.pgbouncer, ['--version']),
  wrk: await versionOf(t.wrk, ['-v']),
  pgbench: await versionOf(t.pgbench, ['--version']),
});

export const MISSING = (name: string): string => `${name} not installed (apt-get install -y ${name}); skipped`;

export interface Peer {
  /** Listening ports, by the name the caller gave. */
  ports: Record<string, number>;
  stop(): Promise<void>;
}

const startIn = async (dir: string, daemon: Daemon, ports: number[], logFile: string): Promise<Peer> => {
  try {
    for (const p of ports) await waitPort(p, 10_000, () => daemon.child.exitCode === null);
  } catch (err) {
    await daemon.stop();
    let log = '';
    try {
      log = readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join(' | ');
    } catch {
      // no log
    }
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${err instanceof Error ? err.message : String(err)}${log ? `: ${log}` : ''}`);
  }
  return {
    ports: {},
    stop: async () => {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

/** haproxy in mode tcp: one frontend per named target port. */
export const startHaproxy = async (bin: string, targets: Record<string, number>, logDir: string): Promise<Peer> => {
  const dir = mkdtempSync(join(tmpdir(), 'pa-bench-haproxy-'));
  const ports: Record<string, number> = {};
  let cfg = `global\n  nbthread 1\n  maxconn 8000\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n`;
  for (const [name, target] of Object.entries(targets)) {
    ports[name] = await freePort();
    cfg += `\nlisten ${name}\n  bind 127.0.0.1:${ports[name]}\n  server s1 127.0.0.1:${target}\n`;
  }
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, cfg);
  const log = join(logDir, 'haproxy.log');
  const peer = await startIn(dir, startDaemon(bin, ['-f', file, '-db'], log), Object.values(ports), log);
  return { ...peer, ports };
};

/** nginx as an HTTP/1.1 reverse proxy with a keep-alive upstream pool. */
export const startNginx = async (bin: string, backendPort: number, logDir: string): Promise<Peer> => {
  const dir = mkdtempSync(join(tmpdir(), 'pa-bench-nginx-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const cfg = `worker_processes 1;
daemon off;
error_log ${join(logDir, 'nginx-error.log')} warn;
pid ${join(dir, 'nginx.pid')};
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, cfg);
  const log = join(logDir, 'nginx.log');
  const peer = await startIn(dir, startDaemon(bin, ['-c', file, '-p', dir], log), [port], log);
  return { ...peer, ports: { http: port } };
};

/** The account pgbouncer drops to when started as root (it refuses to run as root). */
const unprivilegedUser = (): string | null => {
  try {
    const users = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')[0]);
    for (const u of ['postgres', 'nobody']) if (users.includes(u)) return u;
  } catch {
    // not a usual system
  }
  return null;
};

/** pgbouncer in session mode in front of `database` on the server `conn` names; any client is let in (auth_type any). */
export const startPgbouncer = async (bin: string, conn: Readonly<Record<string, string>>, database: string, logDir: string): Promise<Peer> => {
  const dir = mkdtempSync(join(tmpdir(), 'pa-bench-pgbouncer-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const target = [`host=${conn.host ?? '127.0.0.1'}`, `port=${conn.port ?? '5432'}`, `dbname=${database}`, `user=${conn.user ?? 'postgres'}`, ...(conn.password ? [`password=${conn.password}`] : [])].join(' ');
  const cfg = `[databases]
${database} = ${target}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = any
pool_mode = session
max_client_conn = 500
default_pool_size = 40
ignore_startup_parameters = extra_float_digits
`;
  const file = join(dir, 'pgbouncer.ini');
  writeFileSync(file, cfg);
  chmodSync(file, 0o644);
  const args: string[] = [];
  if (process.getuid?.() === 0) {
    const user = unprivilegedUser();
    if (!user) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error('pgbouncer refuses to run as root and no unprivileged account (postgres, nobody) exists');
    }
    args.push('-u', user);
  }
  const log = join(logDir, 'pgbouncer.log');
  const peer = await startIn(dir, startDaemon(bin, [...args, file], log), [port], log);
  return { ...peer, ports: { pg: port } };
};
