import { AppError, newId } from '@pa/kit';
import type { Database, Queryable } from '../../db/pool';
import { actorOf, type AuditLog } from '../audit/audit-log';
import { decodeCursor, pageById, type Page } from '../pagination';
import { PERMISSIONS, type Permission, type Principal, type RequestMeta } from '../permissions';

export interface Role {
  id: string;
  name: string;
  description: string;
  permissions: Permission[];
  builtIn: boolean;
  createdAt: string;
  updatedAt: string;
}

interface RoleRow {
  id: string;
  name: string;
  description: string;
  permissions: string[];
  built_in: boolean;
  created_at: Date;
  updated_at: Date;
}

const toRole = (r: RoleRow): Role => ({
  id: r.id,
  name: r.name,
  description: r.description,
  permissions: r.permissions.filter((p): p is Permission => (PERMISSIONS as readonly string[]).includes(p)).sort(),
  builtIn: r.built_in,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

/** The roles seeded on first start. Their names are data: nothing checks them in code. */
export const BUILT_IN_ROLES = [
  { name: 'admin', description: 'Full access to the admin API.', permissions: [...PERMISSIONS] },
  { name: 'user', description: 'May list and connect to the connections policies grant.', permissions: [] },
] as const;

export interface RoleInput {
  name: string;
  description?: string;
  permissions: Permission[];
}

/**
 * Roles and role bindings. Built-in roles cannot be deleted or renamed; the
 * built-in role that holds every permission keeps them all.
 */
export class RoleService {
  constructor(
    private readonly db: Database,
    private readonly audit: AuditLog,
  ) {}

  /** Seeds the built-in roles when missing (idempotent). */
  async seedBuiltIns(tx: Queryable = this.db): Promise<void> {
    for (const r of BUILT_IN_ROLES) {
      await tx.query(
        `INSERT INTO roles (id, name, description, permissions, built_in) VALUES ($1, $2, $3, $4, true)
         ON CONFLICT DO NOTHING`,
        [newId('rol'), r.name, r.description, [...r.permissions]],
      );
    }
  }

  async list(limit: number, cursor?: string): Promise<Page<Role>> {
    const after = cursor ? decodeCursor(cursor, ['id']).id : '';
    const { rows } = await this.db.query<RoleRow>('SELECT * FROM roles WHERE id > $1 ORDER BY id LIMIT $2', [after, limit + 1]);
    return pageById(rows.map(toRole), limit);
  }

  async get(idOrName: string, tx: Queryable = this.db): Promise<Role> {
    const { rows } = await tx.query<RoleRow>('SELECT * FROM roles WHERE id = $1 OR lower(name) = lower($1)', [idOrName]);
    const row = rows[0];
    if (!row) throw new AppError('ROLE_NOT_FOUND');
    return toRole(row);
  }

  /** Resolves role names to ids; unknown names are reported with their index under `path`. */
  async resolveNames(names: readonly string[], path: string, tx: Queryable = this.db): Promise<Role[]> {
    const { rows } = await tx.query<RoleRow>('SELECT * FROM roles WHERE lower(name) = ANY($1)', [names.map((n) => n.toLowerCase())]);
    const found = new Map(rows.map((r) => [r.name.toLowerCase(), toRole(r)]));
    const problems = names
      .map((n, i) => ({ n, i }))
      .filter(({ n }) => !found.has(n.toLowerCase()))
      .map(({ n, i }) => ({ path: `${path}.${i}`, message: `no role named "${n}"` }));
    if (problems.length) throw new AppError('VALIDATION_FAILED', { message: 'Unknown role.', details: problems });
    return names.map((n) => found.get(n.toLowerCase()) as Role);
  }

  async create(input: RoleInput, actor: Principal, meta: RequestMeta): Promise<Role> {
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<RoleRow>(
        'INSERT INTO roles (id, name, description, permissions) VALUES ($1, $2, $3, $4) RETURNING *',
        [newId('rol'), input.name, input.description ?? '', [...new Set(input.permissions)].sort()],
      );
      const role = toRole(rows[0] as RoleRow);
      await this.audit.record({ action: 'role.create', outcome: 'success', actor: actorOf(actor), targetType: 'role', targetId: role.id, request: meta, details: { after: role } }, tx);
      return role;
    });
  }

  async update(idOrName: string, patch: Partial<RoleInput>, actor: Principal, meta: RequestMeta): Promise<Role> {
    return this.db.transaction(async (tx) => {
      const before = await this.get(idOrName, tx);
      if (before.builtIn && patch.name !== undefined && patch.name.toLowerCase() !== before.name.toLowerCase()) {
        throw new AppError('ROLE_BUILT_IN', { message: 'Built-in roles cannot be renamed.' });
      }
      // Compare as sets: a list of the right length may repeat one permission and drop others.
      if (before.builtIn && patch.permissions && before.permissions.length === PERMISSIONS.length && new Set(patch.permissions).size !== PERMISSIONS.length) {
        throw new AppError('ROLE_BUILT_IN', { message: 'The built-in role with every permission keeps them all.' });
      }
      const { rows } = await tx.query<RoleRow>(
        `UPDATE roles SET name = $2, description = $3, permissions = $4, updated_at = now() WHERE id = $1 RETURNING *`,
        [before.id, patch.name ?? before.name, patch.description ?? before.description, [...new Set(patch.permissions ?? before.permissions)].sort()],
      );
      const after = toRole(rows[0] as RoleRow);
      if (after.name !== before.name) {
        // Policies bind roles by name: follow the rename so no policy silently detaches.
        await tx.query(
          `UPDATE policies SET roles = (SELECT array_agg(CASE WHEN lower(r) = lower($1) THEN $2 ELSE r END) FROM unnest(roles) r),
             version = version + 1, updated_at = now()
           WHERE EXISTS (SELECT 1 FROM unnest(roles) r WHERE lower(r) = lower($1))`,
          [before.name, after.name],
        );
      }
      await this.assertManageable(tx);
      await this.audit.record({ action: 'role.update', outcome: 'success', actor: actorOf(actor), targetType: 'role', targetId: after.id, request: meta, details: { before, after } }, tx);
      return after;
    });
  }

  async delete(idOrName: string, actor: Principal, meta: RequestMeta): Promise<void> {
    await this.db.transaction(async (tx) => {
      const before = await this.get(idOrName, tx);
      if (before.builtIn) throw new AppError('ROLE_BUILT_IN', { message: 'Built-in roles cannot be deleted.' });
      const { rows: users } = await tx.query<{ name: string }>(
        `SELECT name FROM policies WHERE EXISTS (SELECT 1 FROM unnest(roles) r WHERE lower(r) = lower($1)) ORDER BY name`,
        [before.name],
      );
      if (users.length > 0) {
        // A later role of the same name would silently inherit these policies: make the admin decide.
        throw new AppError('CONFLICT', { message: `Role ${before.name} is used by policies ${users.map((u) => u.name).join(', ')}; remove it from them first.` });
      }
      await tx.query('DELETE FROM roles WHERE id = $1', [before.id]);
      await this.assertManageable(tx);
      await this.audit.record({ action: 'role.delete', outcome: 'success', actor: actorOf(actor), targetType: 'role', targetId: before.id, request: meta, details: { before } }, tx);
    });
  }

  /** Role names bound to a user. */
  async namesForUser(userId: string, tx: Queryable = this.db): Promise<string[]> {
    const { rows } = await tx.query<{ name: string }>(
      'SELECT r.name FROM role_bindings b JOIN roles r ON r.id = b.role_id WHERE b.user_id = $1 ORDER BY r.name',
      [userId],
    );
    return rows.map((r) => r.name);
  }

  /** Effective permissions of a user (union over bound roles). */
  async permissionsForUser(userId: string): Promise<{ roles: string[]; permissions: Set<Permission> }> {
    const { rows } = await this.db.query<{ name: string; permissions: string[] }>(
      'SELECT r.name, r.permissions FROM role_bindings b JOIN roles r ON r.id = b.role_id WHERE b.user_id = $1 ORDER BY r.name',
      [userId],
    );
    const permissions = new Set<Permission>();
    for (const r of rows) for (const p of r.permissions) if ((PERMISSIONS as readonly string[]).includes(p)) permissions.add(p as Permission);
    return { roles: rows.map((r) => r.name), permissions };
  }

  /** Replaces a user's role bindings (inside the caller's transaction). */
  async setBindings(userId: string, roleIds: readonly string[], tx: Queryable): Promise<void> {
    await tx.query('DELETE FROM role_bindings WHERE user_id = $1 AND NOT (role_id = ANY($2))', [userId, roleIds]);
    for (const roleId of roleIds) {
      await tx.query('INSERT INTO role_bindings (user_id, role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [userId, roleId]);
    }
  }

  /**
   * Refuses a change that leaves no active user able to manage users and roles
   * (holding both `users:write` and `roles:write`), which would lock everyone out.
   */
  async assertManageable(tx: Queryable): Promise<void> {
    const { rows } = await tx.query<{ n: string }>(
      `SELECT count(*) AS n FROM users u WHERE NOT u.disabled
         AND EXISTS (SELECT 1 FROM role_bindings b JOIN roles r ON r.id = b.role_id WHERE b.user_id = u.id AND 'users:write' = ANY(r.permissions))
         AND EXISTS (SELECT 1 FROM role_bindings b JOIN roles r ON r.id = b.role_id WHERE b.user_id = u.id AND 'roles:write' = ANY(r.permissions))`,
    );
    if (Number(rows[0]?.n ?? 0) === 0) throw new AppError('LAST_ADMIN');
  }
}
