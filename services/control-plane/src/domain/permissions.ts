/**
 * Permissions for the admin API. Roles carry them; every protected endpoint
 * names the one it needs. No code path checks a role by its name.
 */
export const PERMISSIONS = [
  'users:read',
  'users:write',
  'roles:read',
  'roles:write',
  'connections:read',
  'connections:write',
  'policies:read',
  'policies:write',
  'grants:read',
  'grants:revoke',
  'audit:read',
  'keys:read',
  'keys:rotate',
  'settings:read',
  'settings:write',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

/** The authenticated caller of a request. */
export interface Principal {
  readonly userId: string;
  readonly username: string;
  readonly roles: readonly string[];
  readonly permissions: ReadonlySet<Permission>;
  /** Login session (refresh-token family) the access token belongs to. */
  readonly sessionId: string;
}

/** Request facts recorded with audit events. */
export interface RequestMeta {
  readonly requestId?: string;
  readonly sourceIp?: string;
  readonly userAgent?: string;
}
