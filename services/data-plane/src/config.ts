import { hostname } from 'node:os';
import { z } from 'zod';
import { AppError, envBool, envPort, mergeDeep, parseConfig, readSecret, setPath, type Env } from '@pa/kit';

/**
 * Data-plane node configuration, from the environment (validated at start-up,
 * every problem reported at once). Secrets (the node token) come only from
 * PA_NODE_TOKEN or PA_NODE_TOKEN_FILE; TLS keys only from the files named here
 * (read when the node starts, see `loadNodeTls`).
 */
export const configSchema = z.strictObject({
  environment: z.enum(['development', 'test', 'production']).default('development'),
  nodeId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(),
  dataDir: z.string().min(1).default('./.data'),
  logLevel: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
  tunnel: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: envPort.default(7000),
      /** URL clients dial (advertised to the control plane); defaults to the listener's. */
      publicUrl: z.string().url().optional(),
      handshakeTimeoutMs: z.coerce.number().int().min(100).default(10_000),
      /** Most tunnels this node holds open at once. */
      maxTunnels: z.coerce.number().int().min(1).default(10_000),
      /** Native TLS on the tunnel listener (files, PEM): HTTPS, and an https:// URL advertised by default. */
      tls: z
        .strictObject({
          certFile: z.string().min(1).optional(),
          keyFile: z.string().min(1).optional(),
          /** How often the files are checked for a new certificate (rotation needs no restart); 0: read at start only. */
          reloadIntervalSeconds: z.coerce.number().min(0).default(30),
        })
        .prefault({}),
    })
    .prefault({}),
  /**
   * Direct PostgreSQL connections (without pa connect): clients dial this port
   * with sslmode=require and present their grant as the password. Off unless a
   * port is set; needs the tunnel listener's certificate (PA_TUNNEL_TLS_*).
   */
  postgresDirect: z
    .strictObject({
      host: z.string().min(1).optional(),
      port: envPort.optional(),
    })
    .prefault({}),
  admin: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: envPort.default(7001),
    })
    .prefault({}),
  controlPlane: z
    .strictObject({
      /** host:port of the control plane's gRPC API. */
      grpcAddress: z.string().min(1).default('127.0.0.1:9090'),
      /** Secret: only from PA_NODE_TOKEN(_FILE). */
      token: z.string().min(32).optional(),
      /** `iss` the grants carry (the control plane's issuer). */
      issuer: z.string().min(1).default('port-authorizing'),
      /** TLS to the control plane's gRPC listener. */
      tls: z
        .strictObject({
          /** Dial with TLS; on when any file below is set, off otherwise. */
          enabled: envBool.optional(),
          /** CA bundle that signs the control plane's certificate; the system's CAs when absent. */
          caFile: z.string().min(1).optional(),
          /** Client certificate and key, for a control plane that requires mutual TLS from nodes. */
          certFile: z.string().min(1).optional(),
          keyFile: z.string().min(1).optional(),
          /** Name to verify the control plane's certificate against (and SNI), when it differs from the dialled host. */
          serverName: z.string().min(1).optional(),
        })
        .prefault({}),
    })
    .prefault({}),
  redis: z
    .strictObject({
      url: z.string().url().optional(),
      keyPrefix: z.string().default('pa:'),
      /** Longest wait for Redis on the data path before deciding with the local fallback. */
      timeoutMs: z.coerce.number().int().min(1).max(10_000).default(50),
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxTunnelsPerUser: z.coerce.number().int().min(1).default(100),
      idleTimeoutSeconds: z.coerce.number().int().min(1).default(1800),
      connectTimeoutMs: z.coerce.number().int().min(100).default(5_000),
      maxHeaderBytes: z.coerce.number().int().min(1024).max(1_048_576).default(16 * 1024),
      /** New tunnels per user per minute, across all nodes (Redis). */
      tunnelsPerUserPerMinute: z.coerce.number().int().min(1).default(60),
      /** HTTP requests / SQL statements per user per second, across all nodes. */
      requestsPerUserPerSecond: z.coerce.number().int().min(1).default(200),
    })
    .prefault({}),
  audit: z
    .strictObject({
      spoolCapacityBytes: z.coerce.number().int().min(65_536).default(256 * 1024 * 1024),
      /**
       * `written` (default): a decision record is written to the spool file
       * before the action it allows, and fdatasync'd in a group right after
       * (survives the node process dying; a power loss can take the last
       * group). `durable`: the action also waits for that fdatasync.
       */
      durability: z.enum(['written', 'durable']).default('written'),
      /**
       * How long the spool gathers appends before one fdatasync covers them
       * (default 10 ms with `written` durability, where nothing waits for it;
       * 2 ms with `durable`, where every action does).
       */
      groupCommitMs: z.coerce.number().int().min(0).max(1000).optional(),
    })
    .prefault({}),
  drainTimeoutSeconds: z.coerce.number().int().min(0).max(3600).default(30),
}).superRefine((cfg, ctx) => {
  const issue = (path: string[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const t = cfg.tunnel.tls;
  if (t.certFile && !t.keyFile) issue(['tunnel', 'tls', 'keyFile'], 'PA_TUNNEL_TLS_KEY_FILE is required with PA_TUNNEL_TLS_CERT_FILE');
  if (t.keyFile && !t.certFile) issue(['tunnel', 'tls', 'certFile'], 'PA_TUNNEL_TLS_CERT_FILE is required with PA_TUNNEL_TLS_KEY_FILE');
  if (t.certFile && cfg.tunnel.publicUrl?.startsWith('http://')) {
    issue(['tunnel', 'publicUrl'], 'the tunnel listener serves HTTPS (PA_TUNNEL_TLS_CERT_FILE): PA_TUNNEL_PUBLIC_URL must be an https:// URL');
  }
  if (cfg.postgresDirect.port !== undefined && !(t.certFile && t.keyFile)) {
    issue(['postgresDirect', 'port'], 'direct PostgreSQL connections carry the grant as the password and need TLS: set PA_TUNNEL_TLS_CERT_FILE and PA_TUNNEL_TLS_KEY_FILE');
  }
  const c = cfg.controlPlane.tls;
  if (c.certFile && !c.keyFile) issue(['controlPlane', 'tls', 'keyFile'], 'PA_CONTROL_PLANE_TLS_KEY_FILE is required with PA_CONTROL_PLANE_TLS_CERT_FILE');
  if (c.keyFile && !c.certFile) issue(['controlPlane', 'tls', 'certFile'], 'PA_CONTROL_PLANE_TLS_CERT_FILE is required with PA_CONTROL_PLANE_TLS_KEY_FILE');
  if (c.enabled === false && (c.caFile || c.certFile || c.serverName)) {
    issue(['controlPlane', 'tls', 'enabled'], 'PA_CONTROL_PLANE_TLS is false, but TLS files or a server name are set for the control plane');
  }
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

const ENV_MAP: Record<string, string> = {
  PA_ENV: 'environment',
  PA_NODE_ID: 'nodeId',
  PA_DATA_DIR: 'dataDir',
  PA_LOG_LEVEL: 'logLevel',
  PA_TUNNEL_HOST: 'tunnel.host',
  PA_TUNNEL_PORT: 'tunnel.port',
  PA_TUNNEL_PUBLIC_URL: 'tunnel.publicUrl',
  PA_MAX_TUNNELS: 'tunnel.maxTunnels',
  PA_PG_DIRECT_HOST: 'postgresDirect.host',
  PA_PG_DIRECT_PORT: 'postgresDirect.port',
  PA_TUNNEL_TLS_CERT_FILE: 'tunnel.tls.certFile',
  PA_TUNNEL_TLS_KEY_FILE: 'tunnel.tls.keyFile',
  PA_TUNNEL_TLS_RELOAD_SECONDS: 'tunnel.tls.reloadIntervalSeconds',
  PA_ADMIN_HOST: 'admin.host',
  PA_ADMIN_PORT: 'admin.port',
  PA_CONTROL_PLANE_GRPC: 'controlPlane.grpcAddress',
  PA_ISSUER: 'controlPlane.issuer',
  PA_CONTROL_PLANE_TLS: 'controlPlane.tls.enabled',
  PA_CONTROL_PLANE_TLS_CA_FILE: 'controlPlane.tls.caFile',
  PA_CONTROL_PLANE_TLS_CERT_FILE: 'controlPlane.tls.certFile',
  PA_CONTROL_PLANE_TLS_KEY_FILE: 'controlPlane.tls.keyFile',
  PA_CONTROL_PLANE_TLS_SERVER_NAME: 'controlPlane.tls.serverName',
  REDIS_URL: 'redis.url',
  PA_REDIS_PREFIX: 'redis.keyPrefix',
  PA_REDIS_TIMEOUT_MS: 'redis.timeoutMs',
  PA_MAX_TUNNELS_PER_USER: 'limits.maxTunnelsPerUser',
  PA_TUNNELS_PER_USER_PER_MINUTE: 'limits.tunnelsPerUserPerMinute',
  PA_REQUESTS_PER_USER_PER_SECOND: 'limits.requestsPerUserPerSecond',
  PA_IDLE_TIMEOUT: 'limits.idleTimeoutSeconds',
  PA_CONNECT_TIMEOUT_MS: 'limits.connectTimeoutMs',
  PA_AUDIT_SPOOL_BYTES: 'audit.spoolCapacityBytes',
  PA_AUDIT_DURABILITY: 'audit.durability',
  PA_AUDIT_GROUP_COMMIT_MS: 'audit.groupCommitMs',
  PA_DRAIN_TIMEOUT: 'drainTimeoutSeconds',
};

/** Loads the node's configuration from `env` (defaults to the process environment). */
export const loadConfig = (env: Env = process.env, overrides: ConfigInput = {}): Config => {
  const fromEnv: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(ENV_MAP)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(fromEnv, path, value);
  }
  const token = readSecret(env, 'PA_NODE_TOKEN');
  if (token !== undefined) setPath(fromEnv, 'controlPlane.token', token);
  return parseConfig(configSchema, mergeDeep(fromEnv, overrides as Record<string, unknown>));
};

/** The node id: configured, or derived from the host name and tunnel port. */
export const nodeIdOf = (config: Config, port: number): string =>
  config.nodeId ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 40)}-${port}`;

/** The node token, required whenever the node talks to a control plane. */
export const requireNodeToken = (token: string | undefined): string => {
  if (!token) {
    throw new AppError('CONFIG_INVALID', { message: 'PA_NODE_TOKEN (or PA_NODE_TOKEN_FILE) is required: the token the control plane expects from nodes.' });
  }
  return token;
};
