import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import { Client } from 'pg';
import { GrantServiceClient, type Grant } from '@pa/contracts';
import { loadConfig as loadCpConfig, migrate, migrationsFingerprint, startControlPlane, type RunningControlPlane } from '@pa/control-plane';
import { loadConfig as loadNodeConfig, startNode, type RunningNode } from '@pa/data-plane';
import { createCaptureLogger } from '@pa/kit';
import { createTestDatabase, createTestRedis, ensureTemplate, type TestDatabase, type TestRedis } from '@pa/testing';
import { NodeProcess } from './node-process';

export const ADMIN_PASSWORD = 'e2e-admin-password-1';
export const NODE_TOKEN = 'e2e-node-token-0123456789abcdefghijklmnop';
export const MASTER_KEY = `k1:${Buffer.alloc(32, 7).toString('base64')}`;

/**
 * The whole system on real parts: a control plane on its own PostgreSQL
 * database (cloned from the migrated template) and Redis prefix, with its REST
 * and gRPC listeners on port 0, and data-plane nodes that register with it,
 * watch its keys and ship audit to it.
 */
export class System {
  cp!: RunningControlPlane;
  nodes: RunningNode[] = [];
  /** Nodes running as their own OS processes ({@link System.spawnNode}). */
  processes: NodeProcess[] = [];
  readonly logs: string[];
  private readonly logger;
  private constructor(
    readonly database: TestDatabase,
    readonly redis: TestRedis,
    readonly dir: string,
  ) {
    const { logger, lines } = createCaptureLogger('e2e', 'info');
    this.logger = logger;
    this.logs = lines;
  }

  /** Redis URL the nodes use (e.g. through a fault proxy); the control plane's by default. */
  nodeRedisUrl: string | null = null;
  /** Extra node settings (limits…). */
  nodeOverrides: Record<string, unknown> = {};
  /** Extra environment of the control plane (e.g. PA_GRPC_TLS_* files). */
  cpEnv: Record<string, string> = {};
  /** Extra environment of each node, by node id (e.g. PA_CONTROL_PLANE_TLS_* and PA_TUNNEL_TLS_* files). */
  nodeEnv: (nodeId: string) => Record<string, string> = () => ({});

  static async start(
    nodes = 2,
    options: { nodeRedisUrl?: string; nodeOverrides?: Record<string, unknown>; cpEnv?: Record<string, string>; nodeEnv?: (nodeId: string) => Record<string, string> } = {},
  ): Promise<System> {
    const template = await ensureTemplate({ name: 'cp', fingerprint: migrationsFingerprint(), build: async (url) => void (await migrate(url)) });
    const sys = new System(await createTestDatabase(template), await createTestRedis(), mkdtempSync(join(tmpdir(), 'pa-e2e-')));
    sys.nodeRedisUrl = options.nodeRedisUrl ?? null;
    sys.nodeOverrides = options.nodeOverrides ?? {};
    sys.cpEnv = options.cpEnv ?? {};
    if (options.nodeEnv) sys.nodeEnv = options.nodeEnv;
    await sys.startControlPlane();
    for (let i = 0; i < nodes; i += 1) await sys.startNode(`node-${i}`);
    return sys;
  }

  private cpConfig(grpcPort = 0) {
    return loadCpConfig(
      { PA_MASTER_KEY: MASTER_KEY, PA_NODE_TOKEN: NODE_TOKEN, PA_ADMIN_PASSWORD: ADMIN_PASSWORD, ...this.cpEnv },
      {
        environment: 'test',
        dataDir: this.dir,
        http: { port: 0 },
        grpc: { port: grpcPort },
        database: { url: this.database.url },
        redis: { url: this.redis.url, keyPrefix: this.redis.prefix },
        auth: { bcryptCost: 4 },
        nodes: { heartbeatSeconds: 1 },
      },
    );
  }

  /** Starts (or restarts, on the same gRPC port) the control plane. */
  async startControlPlane(grpcPort = 0): Promise<void> {
    this.cp = await startControlPlane(this.cpConfig(grpcPort), this.logger);
  }

  get grpcPort(): number {
    return Number(this.cp.grpcAddress.split(':').pop());
  }

  async startNode(nodeId: string, env: Record<string, string> = {}): Promise<RunningNode> {
    const node = await this.launchNode(nodeId, env);
    await node.keysReady;
    await waitFor(async () => (await this.nodeIds()).includes(nodeId), `node ${nodeId} registered`);
    return node;
  }

  /**
   * Starts a node without waiting for it to get keys or register (for nodes the
   * control plane refuses); stopped by `stop()`. `env` adds to `nodeEnv(nodeId)`.
   */
  async launchNode(nodeId: string, env: Record<string, string> = {}): Promise<RunningNode> {
    const config = loadNodeConfig(
      { PA_NODE_TOKEN: NODE_TOKEN, ...this.nodeEnv(nodeId), ...env },
      {
        nodeId,
        dataDir: this.dir,
        tunnel: { port: 0 },
        admin: { port: 0 },
        controlPlane: { grpcAddress: this.cp.grpcAddress },
        // A generous Redis timeout: these tests check shared behaviour, not the latency fallback.
        redis: { url: this.nodeRedisUrl ?? this.redis.url, keyPrefix: this.redis.prefix, timeoutMs: 2000 },
        drainTimeoutSeconds: 1,
        ...this.nodeOverrides,
      },
    );
    const node = await startNode(config, this.logger.child({ nodeId }));
    this.nodes.push(node);
    return node;
  }

  /** Log records (parsed) with `message`, from the node `nodeId` when given. */
  logged(message: string, nodeId?: string): Array<Record<string, unknown>> {
    return this.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r.message === message && (nodeId === undefined || r.nodeId === nodeId));
  }

  /**
   * Starts a data-plane node as its own OS process — the real `main.ts`,
   * configured only through the environment, as a deployment runs it — on the
   * system's data directory (its audit spool is `<dir>/spool/<nodeId>`, so a
   * restart with the same id finds what an earlier process left), and waits
   * until it is ready (keys loaded) and registered with its tunnel URL.
   * `grpcAddress` lets it reach the control plane through a fault proxy.
   */
  async spawnNode(nodeId: string, options: { grpcAddress?: string; env?: Record<string, string> } = {}): Promise<NodeProcess> {
    const node = await NodeProcess.start(nodeId, {
      PA_ENV: 'test',
      PA_LOG_LEVEL: 'info',
      PA_NODE_TOKEN: NODE_TOKEN,
      PA_DATA_DIR: this.dir,
      PA_TUNNEL_PORT: '0',
      PA_ADMIN_PORT: '0',
      PA_CONTROL_PLANE_GRPC: options.grpcAddress ?? this.cp.grpcAddress,
      REDIS_URL: this.nodeRedisUrl ?? this.redis.url,
      PA_REDIS_PREFIX: this.redis.prefix,
      PA_REDIS_TIMEOUT_MS: '2000',
      PA_DRAIN_TIMEOUT: '1',
      ...options.env,
    });
    this.processes.push(node);
    await waitFor(async () => (await fetch(`${node.adminUrl}/readyz`)).status === 200, `node ${nodeId} ready`, 30_000);
    await waitFor(async () => {
      const { rows } = await this.query<{ tunnel_url: string }>('SELECT tunnel_url FROM nodes WHERE id = $1 AND NOT draining', [nodeId]);
      return rows[0]?.tunnel_url === node.tunnelUrl;
    }, `node ${nodeId} registered`);
    return node;
  }

  async nodeIds(): Promise<string[]> {
    const { rows } = await this.query<{ id: string }>('SELECT id FROM nodes WHERE NOT draining');
    return rows.map((r) => r.id);
  }

  async query<T extends Record<string, unknown>>(sql: string, args: unknown[] = []): Promise<{ rows: T[] }> {
    const c = new Client({ connectionString: this.database.url });
    await c.connect();
    try {
      return await c.query<T>(sql, args);
    } finally {
      await c.end();
    }
  }

  /** Calls the REST API (JSON), with a bearer token when given. */
  async api(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${this.cp.url}/api/v1${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  async login(username: string, password: string): Promise<string> {
    const res = await this.api('POST', '/auth/login', undefined, { username, password });
    if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.accessToken as string;
  }

  /** Asks the control plane for a grant over gRPC, as the CLI does. */
  async issueGrant(token: string, connectionName: string, ttl = 0): Promise<Grant> {
    const client = new GrantServiceClient(this.cp.grpcAddress, credentials.createInsecure());
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    try {
      return await new Promise<Grant>((resolve, reject) =>
        client.issueGrant({ connectionName, requestedTtlSeconds: ttl }, md, (err, res) => (err ? reject(err) : res?.grant ? resolve(res.grant) : reject(new Error('no grant')))),
      );
    } finally {
      client.close();
    }
  }

  async stop(): Promise<void> {
    for (const p of this.processes) await p.kill('SIGKILL');
    for (const n of this.nodes) await n.stop().catch(() => undefined);
    await this.cp.stop().catch(() => undefined);
    await this.redis.close();
    await this.database.drop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Polls `cond` (no fixed sleeps: each check yields to the event loop and I/O) until true or `ms` passes. */
export const waitFor = async (cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
