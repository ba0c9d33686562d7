import { createServer, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import Redis from 'ioredis';
import { createState, type State } from '@pa/state';
import { dialableHost, type Logger } from '@pa/kit';
import { createApp } from './app';
import type { Config } from './config';
import { SecretBox } from './crypto/secret-box';
import { startEmbeddedDatabase } from './db/embedded';
import { migrate } from './db/migrate';
import { createDatabase } from './db/pool';
import { bootstrapAdmin, type BootstrapResult } from './domain/bootstrap';
import { validatePolicyDocument } from './domain/policies/validate';
import { createGrpcServer } from './grpc/server';
import { loadGrpcTls } from './grpc/tls';
import { buildControlPlane, type ControlPlane } from './services';

export interface RunningControlPlane {
  cp: ControlPlane;
  /** Base URL of the REST API listener. */
  url: string;
  /** URL of the database (embedded or configured); for the migrate command and tests. */
  databaseUrl: string;
  /** host:port of the gRPC listener. */
  grpcAddress: string;
  /** The token data-plane nodes present (from config, or generated under the data directory). */
  nodeToken: string;
  embedded: boolean;
  bootstrap: BootstrapResult | null;
  /** Graceful stop: stop accepting, finish in-flight requests, close pools. */
  stop(): Promise<void>;
}

const listen = (server: Server, port: number, host: string): Promise<number> =>
  new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(port, host, () => {
      const addr = server.address();
      res(typeof addr === 'object' && addr ? addr.port : port);
    });
  });

/**
 * Starts the control plane from config: the embedded database when no
 * DATABASE_URL is set, migrations, the first admin, and the REST listener.
 */
/** Reads or creates (mode 0600) the node token file of the embedded default. */
const nodeTokenFromFile = (file: string): string => {
  if (!existsSync(file)) writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  return readFileSync(file, 'utf8').trim();
};

export interface StartOptions {
  clock?: () => Date;
  /**
   * Shared state to publish revocations to. The all-in-one runner passes the
   * same in-process state to the control plane and its data-plane node; by
   * default it is built from config (Redis when REDIS_URL is set).
   */
  state?: State;
}

export const startControlPlane = async (config: Config, logger: Logger, options: StartOptions = {}): Promise<RunningControlPlane> => {
  const stops: Array<() => Promise<void>> = [];
  try {
    // TLS files first: a missing or mismatched file stops the start before anything else runs.
    const grpcTls = loadGrpcTls(config.grpc.tls);
    if (!grpcTls && !config.grpc.publicTls && config.environment === 'production') {
      logger.warn('The gRPC listener serves without TLS: grants and node traffic travel in clear unless a TLS proxy fronts it.', {
        hint: 'set PA_GRPC_TLS_CERT_FILE and PA_GRPC_TLS_KEY_FILE (or PA_GRPC_PUBLIC_TLS=true behind a TLS-terminating proxy)',
      });
    }
    let databaseUrl = config.database.url;
    const embedded = !databaseUrl;
    if (!databaseUrl) {
      const pg = await startEmbeddedDatabase(config.dataDir, logger);
      stops.push(() => pg.stop());
      databaseUrl = pg.url;
    }
    if (config.database.migrateOnStart) await migrate(databaseUrl, logger);
    const db = createDatabase(databaseUrl, { poolSize: config.database.poolSize, logger });
    stops.push(() => db.close());
    const box = config.secrets.masterKeys?.length
      ? SecretBox.fromSpecs(config.secrets.masterKeys)
      : SecretBox.fromFile(join(resolve(config.dataDir), 'master.key'));
    if (!config.secrets.masterKeys?.length && !embedded) {
      logger.warn('No PA_MASTER_KEY set; using a generated key file in the data directory.', { dataDir: config.dataDir });
    }
    let redis: Redis | undefined;
    if (config.redis.url) {
      redis = new Redis(config.redis.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
      redis.on('error', (err) => logger.warn('Redis connection problem.', { err: err.message }));
      await redis.connect().catch((err: unknown) => logger.warn('Redis unreachable at start; login throttling falls back to this process.', { err }));
      const r = redis;
      stops.push(async () => {
        r.disconnect();
      });
    }
    let state = options.state;
    if (!state) {
      const own = createState({ ...(config.redis.url ? { redis: config.redis.url } : {}), keyPrefix: config.redis.keyPrefix, logger });
      await own.revocations.start();
      stops.push(() => own.close());
      state = own;
    }
    const cp = buildControlPlane({ config, logger, db, box, validatePolicy: validatePolicyDocument, revocations: state.revocations, ...(redis ? { redis } : {}), ...(options.clock ? { clock: options.clock } : {}) });
    await cp.init();
    const nodeToken = config.nodes.token ?? nodeTokenFromFile(join(resolve(config.dataDir), 'node-token'));
    const grpc = createGrpcServer(cp, { nodeToken, tls: grpcTls });
    const grpcPort = await grpc.listen(config.grpc.host, config.grpc.port);
    stops.push(() => grpc.close());
    const grpcHost = dialableHost(config.grpc.host);
    cp.grpcAddress = config.grpc.publicAddress ?? `${grpcHost}:${grpcPort}`;
    cp.onKeysRotated = grpc.broadcastKeys;
    const bootstrap = await bootstrapAdmin(cp, config.bootstrap.adminUsername, config.bootstrap.adminPassword);
    const app = createApp(cp);
    const server = createServer(app);
    server.requestTimeout = 30_000;
    server.headersTimeout = 10_000;
    server.keepAliveTimeout = 5_000;
    const port = await listen(server, config.http.port, config.http.host);
    stops.push(
      () =>
        new Promise<void>((res) => {
          server.close(() => res());
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), 10_000).unref();
        }),
    );
    const host = dialableHost(config.http.host);
    logger.info('Control plane listening.', { url: `http://${host}:${port}`, grpc: cp.grpcAddress, grpcTls: grpcTls ? (grpcTls.nodeCa ? 'mutual' : 'server') : 'off', embeddedDatabase: embedded });
    return {
      cp,
      url: `http://${host}:${port}`,
      databaseUrl,
      grpcAddress: cp.grpcAddress,
      nodeToken,
      embedded,
      bootstrap,
      stop: async () => {
        for (const stop of stops.reverse()) {
          await stop().catch((err: unknown) => logger.warn('Shutdown step failed.', { err }));
        }
      },
    };
  } catch (err) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    throw err;
  }
};
