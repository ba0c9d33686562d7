import type Redis from 'ioredis';
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
import { PolicyExplainer } from './domain/policies/explain';
import { PolicyService, type PolicyValidator } from './domain/policies/policies';
import { RoleService } from './domain/roles/roles';
import { SettingsService } from './domain/settings/settings';
import { UserService, type UserEvents } from './domain/users/users';

/** Everything the REST and gRPC edges need, built once from config and connections. */
export interface ControlPlane {
  config: Config;
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
  clock?: () => Date;
  userEvents?: UserEvents;
}

/** The composition root: wires the domain services together. Call `init()` on the result before serving. */
export const buildControlPlane = (deps: ControlPlaneDeps): ControlPlane & { init(): Promise<void> } => {
  const { config, logger, db } = deps;
  const clock = deps.clock ?? (() => new Date());
  const audit = new AuditLog(db, logger, clock);
  const hasher = createPasswordHasher(config.auth.bcryptCost);
  const roles = new RoleService(db, audit);
  const users = new UserService(db, roles, hasher, audit, deps.userEvents);
  const settings = new SettingsService(db, roles, audit);
  const policies = new PolicyService(db, roles, audit, deps.validatePolicy);
  const connections = new ConnectionService(db, deps.box, policies, audit);
  const accessKeys = new KeyRing(db, deps.box, 'access', config.auth.accessTokenTtlSeconds, logger, clock);
  const tokens = new AccessTokens(accessKeys, { issuer: config.auth.issuer, audience: config.auth.audience, ttlSeconds: config.auth.accessTokenTtlSeconds, clock });
  const throttle = new LoginThrottle({
    userFailures: config.auth.throttleUserFailures,
    addressFailures: config.auth.throttleAddressFailures,
    windowSeconds: config.auth.throttleWindowSeconds,
    keyPrefix: config.redis.keyPrefix,
    logger,
    ...(deps.redis ? { redis: deps.redis } : {}),
  });
  const auth = new AuthService({ db, users, roles, settings, hasher, tokens, throttle, audit, refreshTtlSeconds: config.auth.refreshTokenTtlSeconds, clock });
  return {
    config,
    logger,
    db,
    hasher,
    audit,
    auditQuery: new AuditQuery(db),
    roles,
    users,
    settings,
    policies,
    explainer: new PolicyExplainer(policies, connections, users, roles),
    connections,
    accessKeys,
    tokens,
    throttle,
    auth,
    init: async () => {
      await initPolicyEngine();
      await roles.seedBuiltIns();
      await accessKeys.init();
    },
  };
};
