import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import YAML from 'yaml';
import { AppError, envBool, envPort, mergeDeep, parseConfig, readSecret, setPath, type Env } from '@pa/kit';

/**
 * Control-plane configuration: one optional YAML file (`PA_CONFIG`) plus
 * environment overrides, validated by one zod schema that reports every problem
 * at once with its path. Secrets come only from the environment or from files
 * named by `*_FILE` variables, never from the YAML file.
 */
export const configSchema = z
  .strictObject({
    environment: z.enum(['development', 'test', 'production']).default('development'),
    dataDir: z.string().min(1).default('./.data'),
    logLevel: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
    http: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: envPort.default(8080),
        /** Public base URL (for links and the OpenAPI document). */
        publicUrl: z.string().url().optional(),
        /** Express `trust proxy` setting: hops of trusted proxies in front. */
        trustProxy: z.coerce.number().int().min(0).max(10).default(0),
        bodyLimitBytes: z.coerce.number().int().positive().default(1_048_576),
      })
      .prefault({}),
    grpc: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: envPort.default(9090),
        /** Address clients and nodes dial (host:port); defaults to the listener's. */
        publicAddress: z.string().min(1).optional(),
        /**
         * Whether clients dial the public address with TLS (told to the CLI by
         * `GET /api/v1/info`). Defaults to whether this listener serves TLS; set it
         * when a TLS-terminating proxy sits in front of a plaintext listener.
         */
        publicTls: envBool.optional(),
        /** Native TLS on the gRPC listener (files, PEM). Both services share the port. */
        tls: z
          .strictObject({
            /** Server certificate (chain, leaf first) and its unencrypted key. */
            certFile: z.string().min(1).optional(),
            keyFile: z.string().min(1).optional(),
            /**
             * CA that signs data-plane nodes' client certificates. When set,
             * NodeService requires one (mutual TLS) in addition to the node token;
             * GrantService (users) still needs no client certificate.
             */
            nodeCaFile: z.string().min(1).optional(),
            /** Require a node's certificate to name its node id (CN or a DNS SAN). */
            bindNodeId: envBool.default(false),
          })
          .prefault({}),
      })
      .prefault({}),
    grants: z
      .strictObject({
        /** Grant lifetime when the client asks for none (renewed by the CLI before it ends). */
        defaultTtlSeconds: z.coerce.number().int().min(30).max(3600).default(300),
        /** Tunnels one grant session may hold open at once. */
        maxConnectionsPerSession: z.coerce.number().int().min(1).max(10_000).default(20),
        /** A tunnel idle this long is closed by the node. */
        idleTimeoutSeconds: z.coerce.number().int().min(10).max(86_400).default(1800),
      })
      .prefault({}),
    nodes: z
      .strictObject({
        heartbeatSeconds: z.coerce.number().int().min(1).max(300).default(10),
        /**
         * Shared secret data-plane nodes present (`authorization: Bearer …`).
         * Secret: only from PA_NODE_TOKEN(_FILE); generated under dataDir when absent (not in production).
         */
        token: z.string().min(32).optional(),
      })
      .prefault({}),
    database: z
      .strictObject({
        /** PostgreSQL URL; when absent, an embedded PostgreSQL is started under dataDir. */
        url: z.string().url().optional(),
        poolSize: z.coerce.number().int().min(1).max(100).default(10),
        /** Apply pending migrations at start-up. */
        migrateOnStart: envBool.default(true),
      })
      .prefault({}),
    redis: z
      .strictObject({
        /** Redis URL; when absent, login throttling state is kept in process. */
        url: z.string().url().optional(),
        keyPrefix: z.string().default('pa:'),
      })
      .prefault({}),
    auth: z
      .strictObject({
        issuer: z.string().min(1).default('port-authorizing'),
        audience: z.string().min(1).default('pa-api'),
        accessTokenTtlSeconds: z.coerce.number().int().min(30).max(86_400).default(900),
        refreshTokenTtlSeconds: z.coerce.number().int().min(300).max(90 * 86_400).default(7 * 86_400),
        bcryptCost: z.coerce.number().int().min(4).max(15).default(12),
        /** Failed logins allowed per username, and per source address, in the window. */
        throttleUserFailures: z.coerce.number().int().min(1).default(5),
        throttleAddressFailures: z.coerce.number().int().min(1).default(30),
        throttleWindowSeconds: z.coerce.number().int().min(1).default(900),
      })
      .prefault({}),
    bootstrap: z
      .strictObject({
        adminUsername: z.string().min(1).default('admin'),
        /** Secret: only from PA_ADMIN_PASSWORD(_FILE). Generated and printed once when absent. */
        adminPassword: z.string().min(12).max(72).optional(),
      })
      .prefault({}),
    secrets: z
      .strictObject({
        /**
         * Master keys for encryption at rest, `id:base64(32 bytes)`, first one active.
         * Secret: only from PA_MASTER_KEY(_FILE). Generated under dataDir when absent
         * (except in production, where it is required).
         */
        masterKeys: z
          .array(z.string().regex(/^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/=_-]{43,44}$/, 'expected id:base64 of 32 bytes'))
          .optional(),
      })
      .prefault({}),
  })
  .superRefine((cfg, ctx) => {
    const tls = cfg.grpc.tls;
    const tlsIssue = (key: keyof typeof tls, message: string) => ctx.addIssue({ code: 'custom', path: ['grpc', 'tls', key], message });
    if (tls.certFile && !tls.keyFile) tlsIssue('keyFile', 'PA_GRPC_TLS_KEY_FILE is required with PA_GRPC_TLS_CERT_FILE');
    if (tls.keyFile && !tls.certFile) tlsIssue('certFile', 'PA_GRPC_TLS_CERT_FILE is required with PA_GRPC_TLS_KEY_FILE');
    if (tls.nodeCaFile && !tls.certFile) tlsIssue('certFile', 'mutual TLS (PA_GRPC_TLS_NODE_CA_FILE) needs the listener\'s own PA_GRPC_TLS_CERT_FILE and PA_GRPC_TLS_KEY_FILE');
    if (tls.bindNodeId && !tls.nodeCaFile) tlsIssue('nodeCaFile', 'PA_GRPC_TLS_BIND_NODE_ID needs PA_GRPC_TLS_NODE_CA_FILE (node client certificates)');
    if (cfg.environment !== 'production') return;
    if (cfg.auth.bcryptCost < 12) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'bcryptCost'], message: 'must be at least 12 in production' });
    }
    if (!cfg.secrets.masterKeys?.length) {
      ctx.addIssue({ code: 'custom', path: ['secrets', 'masterKeys'], message: 'PA_MASTER_KEY is required in production' });
    }
    if (!cfg.database.url) {
      ctx.addIssue({ code: 'custom', path: ['database', 'url'], message: 'DATABASE_URL is required in production' });
    }
    if (!cfg.nodes.token) {
      ctx.addIssue({ code: 'custom', path: ['nodes', 'token'], message: 'PA_NODE_TOKEN is required in production' });
    }
  });

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** Environment variable → config path. */
const ENV_MAP: Record<string, string> = {
  PA_ENV: 'environment',
  PA_DATA_DIR: 'dataDir',
  PA_LOG_LEVEL: 'logLevel',
  PA_HTTP_HOST: 'http.host',
  PA_HTTP_PORT: 'http.port',
  PA_PUBLIC_URL: 'http.publicUrl',
  PA_TRUST_PROXY: 'http.trustProxy',
  PA_GRPC_HOST: 'grpc.host',
  PA_GRPC_PORT: 'grpc.port',
  PA_GRPC_PUBLIC_ADDRESS: 'grpc.publicAddress',
  PA_GRPC_PUBLIC_TLS: 'grpc.publicTls',
  PA_GRPC_TLS_CERT_FILE: 'grpc.tls.certFile',
  PA_GRPC_TLS_KEY_FILE: 'grpc.tls.keyFile',
  PA_GRPC_TLS_NODE_CA_FILE: 'grpc.tls.nodeCaFile',
  PA_GRPC_TLS_BIND_NODE_ID: 'grpc.tls.bindNodeId',
  PA_GRANT_TTL: 'grants.defaultTtlSeconds',
  PA_GRANT_MAX_CONNECTIONS: 'grants.maxConnectionsPerSession',
  PA_GRANT_IDLE_TIMEOUT: 'grants.idleTimeoutSeconds',
  PA_NODE_HEARTBEAT: 'nodes.heartbeatSeconds',
  DATABASE_URL: 'database.url',
  PA_DB_POOL_SIZE: 'database.poolSize',
  PA_MIGRATE_ON_START: 'database.migrateOnStart',
  REDIS_URL: 'redis.url',
  PA_REDIS_PREFIX: 'redis.keyPrefix',
  PA_ACCESS_TOKEN_TTL: 'auth.accessTokenTtlSeconds',
  PA_REFRESH_TOKEN_TTL: 'auth.refreshTokenTtlSeconds',
  PA_BCRYPT_COST: 'auth.bcryptCost',
  PA_ISSUER: 'auth.issuer',
  PA_ADMIN_USERNAME: 'bootstrap.adminUsername',
};

/** YAML keys that must never hold a secret. */
const SECRET_PATHS = ['bootstrap.adminPassword', 'secrets.masterKeys', 'nodes.token'];

const readYaml = (file: string): Record<string, unknown> => {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new AppError('CONFIG_INVALID', { message: `Cannot read config file ${file}.`, cause });
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (cause) {
    // The parser's own message quotes the file; it is kept only as the cause.
    const line = (cause as { linePos?: Array<{ line: number }> }).linePos?.[0]?.line;
    throw new AppError('CONFIG_INVALID', { message: `Config file ${file} is not valid YAML${line ? ` (line ${line})` : ''}.`, cause });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new AppError('CONFIG_INVALID', { message: `Config file ${file} must hold a mapping.` });
  }
  return doc as Record<string, unknown>;
};

const hasPath = (tree: Record<string, unknown>, path: string): boolean => {
  let node: unknown = tree;
  for (const key of path.split('.')) {
    if (node === null || typeof node !== 'object') return false;
    node = (node as Record<string, unknown>)[key];
  }
  return node !== undefined;
};

/**
 * Loads the configuration from `env` (and the YAML file it names), reporting
 * every problem at once. Returns a frozen object.
 */
export const loadConfig = (env: Env = process.env, overrides: ConfigInput = {}): Config => {
  const file = env.PA_CONFIG ? readYaml(resolve(env.PA_CONFIG)) : {};
  const leaked = SECRET_PATHS.filter((p) => hasPath(file, p));
  if (leaked.length > 0) {
    throw new AppError('CONFIG_INVALID', {
      message: `Secrets do not belong in the config file (${leaked.join(', ')}); use PA_ADMIN_PASSWORD / PA_MASTER_KEY or their _FILE forms.`,
    });
  }
  const fromEnv: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(ENV_MAP)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(fromEnv, path, value);
  }
  const adminPassword = readSecret(env, 'PA_ADMIN_PASSWORD');
  if (adminPassword !== undefined) setPath(fromEnv, 'bootstrap.adminPassword', adminPassword);
  const nodeToken = readSecret(env, 'PA_NODE_TOKEN');
  if (nodeToken !== undefined) setPath(fromEnv, 'nodes.token', nodeToken);
  const masterKey = readSecret(env, 'PA_MASTER_KEY');
  if (masterKey !== undefined) {
    setPath(fromEnv, 'secrets.masterKeys', masterKey.split(',').map((k) => k.trim()).filter(Boolean));
  }
  return parseConfig(configSchema, mergeDeep(file, fromEnv, overrides as Record<string, unknown>));
};
