import { AppError, newId } from '@pa/kit';
import type { Database } from '../../db/pool';
import { actorOf, type AuditLog } from '../audit/audit-log';
import type { Principal, RequestMeta } from '../permissions';
import type { RoleService } from '../roles/roles';
import type { SettingsService } from '../settings/settings';
import type { NewUser, User, UserService } from '../users/users';
import type { AccessTokens } from './access-tokens';
import type { LoginThrottle } from './login-throttle';
import type { PasswordHasher } from './passwords';
import { hashRefreshToken, insertRefreshToken, isRefreshTokenShaped, type RefreshRow } from './refresh-tokens';
import { revokeSessions } from './sessions';

export interface TokenPair {
  tokenType: 'Bearer';
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  refreshExpiresIn: number;
  sessionId: string;
}

export interface AuthDeps {
  db: Database;
  users: UserService;
  roles: RoleService;
  settings: SettingsService;
  hasher: PasswordHasher;
  tokens: AccessTokens;
  throttle: LoginThrottle;
  audit: AuditLog;
  refreshTtlSeconds: number;
  clock?: () => Date;
  /** A login session ended (logout, refresh-token reuse): end the grant sessions opened under it too. */
  onLoginSessionRevoked?: (familyId: string, reason: string) => Promise<void>;
}

/**
 * Login, token refresh with rotation and reuse detection, logout, and turning
 * an access token into a Principal on every request.
 */
export class AuthService {
  private readonly clock: () => Date;

  constructor(private readonly d: AuthDeps) {
    this.clock = d.clock ?? (() => new Date());
  }

  async login(username: string, password: string, meta: RequestMeta): Promise<TokenPair & { user: User }> {
    const address = meta.sourceIp ?? 'unknown';
    const fail = async (reason: string, code: 'AUTH_INVALID_CREDENTIALS' | 'AUTH_USER_DISABLED', userId?: string) => {
      await this.d.throttle.recordFailure(username, address);
      await this.d.audit.recordSafely({ action: 'auth.login', outcome: 'failure', actor: { id: userId ?? null, name: username }, targetType: 'user', ...(userId ? { targetId: userId } : {}), request: meta, details: { reason } });
      return new AppError(code);
    };
    const verdict = await this.d.throttle.check(username, address);
    if (verdict.blocked) {
      await this.d.audit.recordSafely({ action: 'auth.login', outcome: 'denied', actor: { name: username }, request: meta, details: { reason: 'throttled', retryAfterSeconds: verdict.retryAfterSeconds } });
      throw new AppError('AUTH_THROTTLED', { meta: { retryAfterSeconds: verdict.retryAfterSeconds } });
    }
    const found = await this.d.users.findForLogin(username);
    if (!found) {
      await this.d.hasher.verifyDummy(password);
      throw await fail('unknown user', 'AUTH_INVALID_CREDENTIALS');
    }
    if (!(await this.d.hasher.verify(password, found.passwordHash))) throw await fail('wrong password', 'AUTH_INVALID_CREDENTIALS', found.id);
    if (found.disabled) throw await fail('user disabled', 'AUTH_USER_DISABLED', found.id);
    await this.d.throttle.recordSuccess(username);
    const familyId = newId('ses');
    const refreshExpiresAt = new Date(this.clock().getTime() + this.d.refreshTtlSeconds * 1000);
    const refreshToken = await this.d.db.transaction(async (tx) => {
      const token = await insertRefreshToken(tx, { familyId, userId: found.id, expiresAt: refreshExpiresAt });
      await this.d.audit.record({ action: 'auth.login', outcome: 'success', actor: { id: found.id, name: found.username }, targetType: 'user', targetId: found.id, sessionId: familyId, request: meta }, tx);
      return token;
    });
    const access = await this.d.tokens.sign({ userId: found.id, username: found.username, sessionId: familyId });
    return { ...this.pair(access, refreshToken, refreshExpiresAt, familyId), user: await this.d.users.get(found.id) };
  }

  private pair(access: { token: string; expiresAt: Date }, refreshToken: string, refreshExpiresAt: Date, sessionId: string): TokenPair {
    const now = this.clock().getTime();
    return {
      tokenType: 'Bearer',
      accessToken: access.token,
      expiresIn: this.d.tokens.ttlSeconds,
      refreshToken,
      refreshExpiresIn: Math.max(0, Math.floor((refreshExpiresAt.getTime() - now) / 1000)),
      sessionId,
    };
  }

  /**
   * Exchanges a refresh token for a new pair. The presented token is spent;
   * presenting a spent token again revokes its whole family (a stolen token
   * and its legitimate owner cannot both keep a session).
   */
  async refresh(refreshToken: string, meta: RequestMeta): Promise<TokenPair> {
    if (!isRefreshTokenShaped(refreshToken)) throw new AppError('AUTH_REFRESH_INVALID');
    const hash = hashRefreshToken(refreshToken);
    type Failure = 'AUTH_REFRESH_INVALID' | 'AUTH_SESSION_REVOKED' | 'AUTH_REFRESH_REUSED' | 'AUTH_USER_DISABLED';
    type Row = RefreshRow & { username: string; disabled: boolean };
    type Outcome = { ok: false; error: Failure; row?: Row } | { ok: true; token: string; row: Row };
    const outcome = await this.d.db.transaction(async (tx): Promise<Outcome> => {
      const { rows } = await tx.query<Row>(
        `SELECT t.*, u.username, u.disabled FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1 FOR UPDATE OF t`,
        [hash],
      );
      const row = rows[0];
      if (!row) return { ok: false, error: 'AUTH_REFRESH_INVALID' };
      if (row.revoked_at) return { ok: false, error: 'AUTH_SESSION_REVOKED', row };
      if (row.used_at) {
        await revokeSessions(tx, { familyId: row.family_id }, 'refresh token reused');
        return { ok: false, error: 'AUTH_REFRESH_REUSED', row };
      }
      if (row.expires_at.getTime() <= this.clock().getTime()) return { ok: false, error: 'AUTH_REFRESH_INVALID', row };
      if (row.disabled) return { ok: false, error: 'AUTH_USER_DISABLED', row };
      await tx.query('UPDATE refresh_tokens SET used_at = $2 WHERE id = $1', [row.id, this.clock()]);
      const token = await insertRefreshToken(tx, { familyId: row.family_id, userId: row.user_id, expiresAt: row.expires_at });
      await this.d.audit.record({ action: 'auth.refresh', outcome: 'success', actor: { id: row.user_id, name: row.username }, sessionId: row.family_id, request: meta }, tx);
      return { ok: true, token, row };
    });
    if (!outcome.ok) {
      const row = outcome.row;
      await this.d.audit.recordSafely({
        action: outcome.error === 'AUTH_REFRESH_REUSED' ? 'auth.refresh_reuse' : 'auth.refresh',
        outcome: outcome.error === 'AUTH_REFRESH_REUSED' ? 'denied' : 'failure',
        actor: row ? { id: row.user_id, name: row.username } : null,
        ...(row ? { sessionId: row.family_id } : {}),
        request: meta,
        details: { reason: outcome.error },
      });
      if (outcome.error === 'AUTH_REFRESH_REUSED' && row) await this.d.onLoginSessionRevoked?.(row.family_id, 'refresh token reused');
      throw new AppError(outcome.error);
    }
    const { row, token } = outcome;
    const access = await this.d.tokens.sign({ userId: row.user_id, username: row.username, sessionId: row.family_id });
    return this.pair(access, token, row.expires_at, row.family_id);
  }

  /** Ends the caller's login session (every token of its family). */
  async logout(principal: Principal, meta: RequestMeta): Promise<void> {
    await this.d.db.transaction(async (tx) => {
      await revokeSessions(tx, { familyId: principal.sessionId }, 'logout');
      await this.d.audit.record({ action: 'auth.logout', outcome: 'success', actor: actorOf(principal), sessionId: principal.sessionId, request: meta }, tx);
    });
    await this.d.onLoginSessionRevoked?.(principal.sessionId, 'logout');
  }

  /** Self-registration, when an admin has switched it on. */
  async register(input: Omit<NewUser, 'roles'>, meta: RequestMeta): Promise<User> {
    const reg = await this.d.settings.registration();
    if (!reg.enabled) {
      await this.d.audit.recordSafely({ action: 'auth.register', outcome: 'denied', actor: { name: input.username }, request: meta, details: { reason: 'registration disabled' } });
      throw new AppError('AUTH_REGISTRATION_DISABLED');
    }
    return this.d.users.create({ ...input, roles: reg.defaultRoles }, null, meta, 'auth.register');
  }

  /**
   * Turns a bearer token into the caller: verifies it, then checks that the
   * user is active and the session not revoked (so logout, disable and
   * revocation take effect on the next request), and loads permissions.
   */
  async authenticate(token: string): Promise<Principal> {
    const claims = await this.d.tokens.verify(token);
    const { rows } = await this.d.db.query<{ username: string; disabled: boolean; live: boolean }>(
      `SELECT u.username, u.disabled,
         EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = $2 AND t.user_id = u.id AND t.revoked_at IS NULL) AS live
       FROM users u WHERE u.id = $1`,
      [claims.userId, claims.sessionId],
    );
    const row = rows[0];
    if (!row) throw new AppError('AUTH_TOKEN_INVALID');
    if (row.disabled) throw new AppError('AUTH_USER_DISABLED');
    if (!row.live) throw new AppError('AUTH_SESSION_REVOKED');
    const { roles, permissions } = await this.d.roles.permissionsForUser(claims.userId);
    return { userId: claims.userId, username: row.username, roles, permissions, sessionId: claims.sessionId };
  }
}
