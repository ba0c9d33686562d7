import { AppError, newId } from '@pa/kit';
import type { Database, Queryable } from '../../db/pool';
import { actorOf, type AuditLog } from '../audit/audit-log';
import type { PasswordHasher } from '../auth/passwords';
import { revokeSessions } from '../auth/sessions';
import { decodeCursor, pageById, type Page } from '../pagination';
import type { Principal, RequestMeta } from '../permissions';
import type { RoleService } from '../roles/roles';

/** A user as the API shows it (never with a password hash). */
export interface User {
  id: string;
  username: string;
  email: string | null;
  displayName: string;
  disabled: boolean;
  roles: string[];
  createdAt: string;
  updatedAt: string;
}

interface UserRow {
  id: string;
  username: string;
  email: string | null;
  display_name: string;
  password_hash: string;
  disabled: boolean;
  created_at: Date;
  updated_at: Date;
  roles?: string[] | null;
}

const toUser = (r: UserRow): User => ({
  id: r.id,
  username: r.username,
  email: r.email,
  displayName: r.display_name,
  disabled: r.disabled,
  roles: (r.roles ?? []).filter(Boolean).sort(),
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

const SELECT_USER = `SELECT u.*, array_remove(array_agg(r.name ORDER BY r.name), NULL) AS roles
  FROM users u LEFT JOIN role_bindings b ON b.user_id = u.id LEFT JOIN roles r ON r.id = b.role_id`;

export interface NewUser {
  username: string;
  password: string;
  email?: string | null;
  displayName?: string;
  roles?: string[];
}

export interface UserPatch {
  email?: string | null;
  displayName?: string;
  disabled?: boolean;
  roles?: string[];
}

/** Hooks other parts of the system attach to user lifecycle changes. */
export interface UserEvents {
  /**
   * A user's sessions must end everywhere (disabled, deleted, password reset, roles changed).
   * On delete it runs inside the deleting transaction, before the delete (which takes the
   * user's grant records with it), with `tx`.
   */
  onUserRevoked?(userId: string, reason: string, tx?: Queryable): Promise<void>;
}

export class UserService {
  constructor(
    private readonly db: Database,
    private readonly roles: RoleService,
    private readonly hasher: PasswordHasher,
    private readonly audit: AuditLog,
    private readonly events: UserEvents = {},
  ) {}

  async list(limit: number, cursor?: string, query?: string): Promise<Page<User>> {
    const after = cursor ? decodeCursor(cursor, ['id']).id : '';
    const args: unknown[] = [after, limit + 1];
    let filter = '';
    if (query) {
      args.push(`%${query.toLowerCase().replace(/[\\%_]/g, '\\$&')}%`);
      filter = 'AND (lower(u.username) LIKE $3 OR lower(u.email) LIKE $3)';
    }
    const { rows } = await this.db.query<UserRow>(
      `${SELECT_USER} WHERE u.id > $1 ${filter} GROUP BY u.id ORDER BY u.id LIMIT $2`,
      args,
    );
    return pageById(rows.map(toUser), limit);
  }

  async get(idOrUsername: string, tx: Queryable = this.db): Promise<User> {
    return toUser(await this.row(idOrUsername, tx));
  }

  private async row(idOrUsername: string, tx: Queryable): Promise<UserRow> {
    const { rows } = await tx.query<UserRow>(
      // An id wins over a username that happens to spell it (usernames may look like ids).
      `${SELECT_USER} WHERE u.id = $1 OR lower(u.username) = lower($1) GROUP BY u.id ORDER BY (u.id = $1) DESC LIMIT 1`,
      [idOrUsername],
    );
    const row = rows[0];
    if (!row) throw new AppError('USER_NOT_FOUND');
    return row;
  }

  /** Finds a user by username with the password hash, for login only. */
  async findForLogin(username: string): Promise<{ id: string; username: string; disabled: boolean; passwordHash: string } | null> {
    const { rows } = await this.db.query<UserRow>('SELECT * FROM users WHERE lower(username) = lower($1)', [username]);
    const r = rows[0];
    return r ? { id: r.id, username: r.username, disabled: r.disabled, passwordHash: r.password_hash } : null;
  }

  async create(input: NewUser, actor: Principal | null, meta: RequestMeta, action = 'user.create'): Promise<User> {
    const hash = await this.hasher.hash(input.password);
    return this.db.transaction(async (tx) => {
      const roles = await this.roles.resolveNames(input.roles ?? [], 'roles', tx);
      const id = newId('usr');
      await tx.query(
        'INSERT INTO users (id, username, email, display_name, password_hash) VALUES ($1, $2, $3, $4, $5)',
        [id, input.username, input.email ?? null, input.displayName ?? '', hash],
      );
      await this.roles.setBindings(id, roles.map((r) => r.id), tx);
      const user = await this.get(id, tx);
      await this.audit.record(
        { action, outcome: 'success', actor: actor ? actorOf(actor) : { id: user.id, name: user.username }, targetType: 'user', targetId: id, request: meta, details: { after: user } },
        tx,
      );
      return user;
    });
  }

  async update(idOrUsername: string, patch: UserPatch, actor: Principal, meta: RequestMeta): Promise<User> {
    let revoke: string | null = null;
    const after = await this.db.transaction(async (tx) => {
      const before = await this.get(idOrUsername, tx);
      await tx.query(
        `UPDATE users SET email = $2, display_name = $3, disabled = $4, updated_at = now() WHERE id = $1`,
        [before.id, patch.email === undefined ? before.email : patch.email, patch.displayName ?? before.displayName, patch.disabled ?? before.disabled],
      );
      if (patch.roles) {
        const roles = await this.roles.resolveNames(patch.roles, 'roles', tx);
        await this.roles.setBindings(before.id, roles.map((r) => r.id), tx);
      }
      await this.roles.assertManageable(tx);
      const updated = await this.get(before.id, tx);
      if (!before.disabled && updated.disabled) revoke = 'user disabled';
      else if (patch.roles && before.roles.join(',') !== updated.roles.join(',')) revoke = 'roles changed';
      if (revoke === 'user disabled') await revokeSessions(tx, { userId: before.id }, revoke);
      await this.audit.record(
        { action: updated.disabled !== before.disabled ? (updated.disabled ? 'user.disable' : 'user.enable') : 'user.update', outcome: 'success', actor: actorOf(actor), targetType: 'user', targetId: before.id, request: meta, details: { before, after: updated } },
        tx,
      );
      return updated;
    });
    if (revoke) await this.events.onUserRevoked?.(after.id, revoke);
    return after;
  }

  async delete(idOrUsername: string, actor: Principal, meta: RequestMeta): Promise<void> {
    await this.db.transaction(async (tx) => {
      const user = await this.get(idOrUsername, tx);
      // Lock the user (no grant can be recorded for them meanwhile), end their grant
      // sessions while their grant records still exist, then delete (cascading to those records).
      await tx.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [user.id]);
      await this.events.onUserRevoked?.(user.id, 'user deleted', tx);
      await tx.query('DELETE FROM users WHERE id = $1', [user.id]);
      await this.roles.assertManageable(tx);
      await this.audit.record({ action: 'user.delete', outcome: 'success', actor: actorOf(actor), targetType: 'user', targetId: user.id, request: meta, details: { before: user } }, tx);
    });
  }

  /** A user changes their own password, proving the current one; other sessions end. */
  async changeOwnPassword(actor: Principal, current: string, next: string, meta: RequestMeta): Promise<void> {
    const row = await this.row(actor.userId, this.db);
    if (!(await this.hasher.verify(current, row.password_hash))) {
      await this.audit.recordSafely({ action: 'user.password_change', outcome: 'failure', actor: actorOf(actor), targetType: 'user', targetId: row.id, request: meta, details: { reason: 'current password wrong' } });
      throw new AppError('AUTH_PASSWORD_MISMATCH');
    }
    const hash = await this.hasher.hash(next);
    await this.db.transaction(async (tx) => {
      await tx.query('UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1', [row.id, hash]);
      await tx.query(
        `UPDATE refresh_tokens SET revoked_at = now(), revoke_reason = 'password changed'
         WHERE user_id = $1 AND family_id <> $2 AND revoked_at IS NULL`,
        [row.id, actor.sessionId],
      );
      await this.audit.record({ action: 'user.password_change', outcome: 'success', actor: actorOf(actor), targetType: 'user', targetId: row.id, request: meta }, tx);
    });
  }

  /** An admin sets a new password; all the user's sessions end. */
  async resetPassword(idOrUsername: string, password: string, actor: Principal, meta: RequestMeta): Promise<void> {
    const hash = await this.hasher.hash(password);
    const userId = await this.db.transaction(async (tx) => {
      const user = await this.get(idOrUsername, tx);
      await tx.query('UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1', [user.id, hash]);
      await revokeSessions(tx, { userId: user.id }, 'password reset');
      await this.audit.record({ action: 'user.password_reset', outcome: 'success', actor: actorOf(actor), targetType: 'user', targetId: user.id, request: meta }, tx);
      return user.id;
    });
    await this.events.onUserRevoked?.(userId, 'password reset');
  }

  async count(): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>('SELECT count(*) AS n FROM users');
    return Number(rows[0]?.n ?? 0);
  }
}
