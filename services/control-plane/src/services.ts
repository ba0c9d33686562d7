import type Redis from 'ioredis';
import type { RevocationStore } from '@pa/state';
import { initPolicyEngine } from '@pa/policy';
import type { Logger } from '@pa/kit';
import type { Config } from './config';
import type { SecretBox } from './crypto/secret-box';
import type { Database } from './db/pool';
import { AuditLog } from './domain/audit/audit-log';
import { AuditQuery } from './domain/audit/audit-query';
import { AccessTokens } from './domain/auth/access-tokens';
import { AuthService } from './domain/auth/auth-service';
import { KeyRing } from './domain/auth/key-ring';
import { LoginThrottle } from './domain/auth/login-throttle';
import { createPasswordHasher, type PasswordHasher } from './domain/auth/passwords';
import { ConnectionService } from './domain/connections/connections';
import { GrantService } from './domain/grants/grants';
import { NodeRegistry } from './domain/nodes/nodes';
import { PolicyExplainer } from './domain/policies/explain';
import { PolicyService, type PolicyValidator } from './domain/policies/policies';
import { RoleService } from './domain/roles/roles';
import { SettingsService } from './domain/settings/settings';
import { UserService, type UserEvents } from './domain/users/users';

/** Everything the REST and gRPC edges need, built once from config and connections. */
export interface ControlPlane {
  config: Config;
  /** host:port where the gRPC API listens (set once it listens). */
  grpcAddress: string;
  /** Called after a key rotation, so watching nodes get the new key set at once. */
  onKeysRotated: () => void;
  logger: Logger;
  db: Database;
  hasher: PasswordHasher;
  audit: AuditLog;
  auditQuery: AuditQuery;
  roles: RoleService;
  users: UserService;
  settings: SettingsService;
  policies: PolicyService;
  explainer: PolicyExplainer;
  connections: ConnectionService;
  accessKeys: KeyRing;
  grantKeys: KeyRing;
  nodeKeys: KeyRing;
  nodes: NodeRegistry;
  grants: GrantService;
  tokens: AccessTokens;
  throttle: LoginThrottle;
  auth: AuthService;
}

export interface ControlPlaneDeps {
  config: Config;
  logger: Logger;
  db: Database;
  box: SecretBox;
  validatePolicy: PolicyValidator;
  redis?: Redis;
  /** Where revocations are published for data-plane nodes (Redis, or in-process for the embedded default). */
  revocations: RevocationStore;
  clock?: () => Date;
}

/** The composition root: wires the domain services together. Call `init()` on the result before serving. */
export const buildControlPlane = (deps: ControlPlaneDeps): ControlPlane & { init(): Promise<void> } => {
  const { config, logger, db } = deps;
  const clock = deps.clock ?? (() => new Date());
  const audit = new AuditLog(db, logger, clock);
  const hasher = createPasswordHasher(config.auth.bcryptCost);
  const roles = new RoleService(db, audit);
  // Late-bound: grants are built after users, and user changes end grant sessions.
  const userEvents: UserEvents = {};
  const users = new UserService(db, roles, hasher, audit, userEvents);
  const settings = new SettingsService(db, roles, audit);
  const policies = new PolicyService(db, roles, audit, deps.validatePolicy);
  const connections = new ConnectionService(db, deps.box, policies, audit);
  const accessKeys = new KeyRing(db, deps.box, 'access', config.auth.accessTokenTtlSeconds, logger, clock);
  // Grants live at most an hour; credentials encrypted to a node key must stay readable for that long.
  const grantKeys = new KeyRing(db, deps.box, 'grant', 3600, logger, clock);
  const nodeKeys = new KeyRing(db, deps.box, 'node-encryption', 3600, logger, clock);
  const nodes = new NodeRegistry(db, audit, config.nodes.heartbeatSeconds, clock);
  const tokens = new AccessTokens(accessKeys, { issuer: config.auth.issuer, audience: config.auth.audience, ttlSeconds: config.auth.accessTokenTtlSeconds, clock });
  const throttle = new LoginThrottle({
    userFailures: config.auth.throttleUserFailures,
    addressFailures: config.auth.throttleAddressFailures,
    windowSeconds: config.auth.throttleWindowSeconds,
    keyPrefix: config.redis.keyPrefix,
    logger,
    ...(deps.redis ? { redis: deps.redis } : {}),
  });
  const explainer = new PolicyExplainer(policies, connections, users, roles);
  const grants = new GrantService({
    db,
    connections,
    explainer,
    grantKeys,
    nodeKeys,
    nodes,
    revocations: deps.revocations,
    audit,
    settings: { issuer: config.auth.issuer, ...config.grants },
    clock,
  });
  userEvents.onUserRevoked = async (userId, reason, tx) => {
    await grants.revokeUserSessions(userId, reason, tx);
  };
  const auth = new AuthService({
    db,
    users,
    roles,
    settings,
    hasher,
    tokens,
    throttle,
    audit,
    refreshTtlSeconds: config.auth.refreshTokenTtlSeconds,
    clock,
    onLoginSessionRevoked: async (familyId, reason) => {
      await grants.revokeLoginSession(familyId, reason);
    },
  });
  return {
    config,
    grpcAddress: config.grpc.publicAddress ?? `${config.grpc.host}:${config.grpc.port}`,
    onKeysRotated: () => undefined,
    logger,
    db,
    hasher,
    audit,
    auditQuery: new AuditQuery(db),
    roles,
    users,
    settings,
    policies,
    explainer,
    grantKeys,
    nodeKeys,
    nodes,
    grants,
    connections,
    accessKeys,
    tokens,
    throttle,
    auth,
    init: async () => {
      await initPolicyEngine();
      await roles.seedBuiltIns();
      await accessKeys.init();
      await grantKeys.init();
      await nodeKeys.init();
    },
  };
};
