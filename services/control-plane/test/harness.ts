import { randomBytes } from 'node:crypto';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import supertest from 'supertest';
import type { Express } from 'express';
import { createCaptureLogger, type Logger } from '@pa/kit';
import { GrantServiceClient, NodeServiceClient } from '@pa/contracts';
import { createState, type State } from '@pa/state';
import { createTestDatabase, createTestRedis, ensureTemplate, type TestDatabase, type TestRedis } from '@pa/testing';
import { createApp } from '../src/app';
import { loadConfig, type Config, type ConfigInput } from '../src/config';
import { SecretBox } from '../src/crypto/secret-box';
import { migrate, migrationsFingerprint } from '../src/db/migrate';
import { createDatabase, type Database } from '../src/db/pool';
import { bootstrapAdmin } from '../src/domain/bootstrap';
import { validatePolicyDocument } from '../src/domain/policies/validate';
import { createGrpcServer } from '../src/grpc/server';
import type { GrpcTls } from '../src/grpc/tls';
import { buildControlPlane, type ControlPlane } from '../src/services';

/** A clock tests can move. */
export class TestClock {
  private offsetMs = 0;
  now = (): Date => new Date(Date.now() + this.offsetMs);
  advance(seconds: number): void {
    this.offsetMs += seconds * 1000;
  }
}

export const ADMIN_PASSWORD = 'admin-password-for-tests';

export interface Harness {
  cp: ControlPlane;
  app: Express;
  request: ReturnType<typeof supertest>;
  db: Database;
  database: TestDatabase;
  redis: TestRedis;
  clock: TestClock;
  config: Config;
  /** Every log line written (JSON), to assert that secrets never appear. */
  logs: string[];
  logger: Logger;
  /** Shared state the control plane publishes revocations to (Redis, this file's prefix). */
  state: State;
  /** Logs in and returns the access token (and the full response body). */
  login(username: string, password: string): Promise<{ token: string; body: Record<string, unknown> }>;
  /** Access token of the bootstrapped admin. */
  adminToken(): Promise<string>;
  /** Registers something `close()` closes first (last registered, first closed). */
  defer(close: () => Promise<void>): void;
  close(): Promise<void>;
}

/** The migrated template all control-plane test databases are cloned from. */
export const controlPlaneTemplate = (): Promise<string> =>
  ensureTemplate({ name: 'cp', fingerprint: migrationsFingerprint(), build: async (url) => void (await migrate(url)) });

/**
 * A control plane on its own database (cloned from the migrated template) and
 * its own Redis key prefix, with a movable clock and captured logs. Call
 * `close()` in afterAll.
 */
export const createHarness = async (overrides: ConfigInput = {}, options: { redis?: boolean } = {}): Promise<Harness> => {
  const database = await createTestDatabase(await controlPlaneTemplate());
  const redis = await createTestRedis();
  const clock = new TestClock();
  const { logger, lines: logs } = createCaptureLogger('control-plane-test');
  const config = loadConfig(
    {},
    {
      environment: 'test',
      auth: { bcryptCost: 4, ...(overrides.auth ?? {}) },
      database: { url: database.url },
      redis: { keyPrefix: redis.prefix },
      ...Object.fromEntries(Object.entries(overrides).filter(([k]) => k !== 'auth')),
    },
  );
  const db = createDatabase(database.url, { poolSize: 5, logger });
  const box = new SecretBox([['k1', randomBytes(32)]]);
  const state = createState({ redis: redis.url, keyPrefix: redis.prefix, logger });
  await state.revocations.start();
  const cp = buildControlPlane({ config, logger, db, box, validatePolicy: validatePolicyDocument, revocations: state.revocations, clock: clock.now, ...(options.redis === false ? {} : { redis: redis.client }) });
  await cp.init();
  await bootstrapAdmin(cp, 'admin', ADMIN_PASSWORD);
  const app = createApp(cp);
  const request = supertest(app);
  let adminToken: string | null = null;
  const deferred: Array<() => Promise<void>> = [];
  const login = async (username: string, password: string) => {
    const res = await request.post('/api/v1/auth/login').send({ username, password });
    if (res.status !== 200) throw new Error(`login as ${username} failed: ${res.status} ${JSON.stringify(res.body)}`);
    return { token: res.body.accessToken as string, body: res.body as Record<string, unknown> };
  };
  return {
    cp,
    app,
    request,
    db,
    database,
    redis,
    clock,
    config,
    logs,
    logger,
    login,
    adminToken: async () => (adminToken ??= (await login('admin', ADMIN_PASSWORD)).token),
    state,
    defer: (close) => {
      deferred.push(close);
    },
    close: async () => {
      for (const close of deferred.reverse()) await close();
      await state.close();
      await db.close();
      await redis.close();
      await database.drop();
    },
  };
};

/** `Authorization` header for a token. */
export const bearer = (token: string): { Authorization: string } => ({ Authorization: `Bearer ${token}` });

/** The control plane's gRPC API of a harness, listening on 127.0.0.1, with a client for each service. */
export interface GrpcHarness {
  /** host:port of the listener (also `h.cp.grpcAddress`). */
  address: string;
  /** The node token NodeService accepts. */
  nodeToken: string;
  server: ReturnType<typeof createGrpcServer>;
  grants: GrantServiceClient;
  nodes: NodeServiceClient;
}

/**
 * Starts the gRPC server for `h` on 127.0.0.1:0, wired like server.ts does
 * (`grpcAddress`, key-rotation broadcasts), with TLS when `tls` is given (the
 * clients then dial with `credentials`). Clients and server are closed by
 * `h.close()`.
 */
export const startGrpc = async (
  h: Harness,
  options: { nodeToken?: string; keyPollMs?: number; tls?: GrpcTls | null; credentials?: ChannelCredentials } = {},
): Promise<GrpcHarness> => {
  const nodeToken = options.nodeToken ?? randomBytes(32).toString('base64url');
  const server = createGrpcServer(h.cp, { nodeToken, ...(options.keyPollMs ? { keyPollMs: options.keyPollMs } : {}), ...(options.tls ? { tls: options.tls } : {}) });
  const port = await server.listen('127.0.0.1', 0);
  const address = `127.0.0.1:${port}`;
  h.cp.grpcAddress = address;
  h.cp.onKeysRotated = server.broadcastKeys;
  const grants = new GrantServiceClient(address, options.credentials ?? credentials.createInsecure());
  const nodes = new NodeServiceClient(address, options.credentials ?? credentials.createInsecure());
  h.defer(async () => {
    grants.close();
    nodes.close();
    await server.close();
  });
  return { address, nodeToken, server, grants, nodes };
};
