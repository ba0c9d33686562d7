import { z } from 'zod';
import type { Database } from '../../db/pool';
import { actorOf, type AuditLog } from '../audit/audit-log';
import type { Principal, RequestMeta } from '../permissions';
import type { RoleService } from '../roles/roles';

export const settingsSchema = z.strictObject({
  registration: z
    .strictObject({
      /** Whether anyone may create an account with POST /auth/register. */
      enabled: z.boolean().default(false),
      /** Roles (by name) given to self-registered users. */
      defaultRoles: z.array(z.string().min(1).max(63)).max(20).default(['user']),
    })
    .prefault({}),
});
export type Settings = z.output<typeof settingsSchema>;
export const settingsPatchSchema = z.strictObject({
  registration: z.strictObject({ enabled: z.boolean().optional(), defaultRoles: z.array(z.string().min(1).max(63)).max(20).optional() }).optional(),
});
export type SettingsPatch = z.infer<typeof settingsPatchSchema>;

/** Instance-wide settings an admin can change at run time. */
export class SettingsService {
  constructor(
    private readonly db: Database,
    private readonly roles: RoleService,
    private readonly audit: AuditLog,
  ) {}

  async get(): Promise<Settings> {
    const { rows } = await this.db.query<{ key: string; value: unknown }>('SELECT key, value FROM settings');
    return settingsSchema.parse(Object.fromEntries(rows.map((r) => [r.key, r.value])));
  }

  async registration(): Promise<Settings['registration']> {
    return (await this.get()).registration;
  }

  async update(patch: SettingsPatch, actor: Principal, meta: RequestMeta): Promise<Settings> {
    return this.db.transaction(async (tx) => {
      const before = await this.get();
      const after = settingsSchema.parse({ ...before, registration: { ...before.registration, ...patch.registration } });
      await this.roles.resolveNames(after.registration.defaultRoles, 'registration.defaultRoles', tx);
      for (const [key, value] of Object.entries(after)) {
        await tx.query(
          `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2, updated_at = now()`,
          [key, JSON.stringify(value)],
        );
      }
      await this.audit.record({ action: 'settings.update', outcome: 'success', actor: actorOf(actor), targetType: 'settings', request: meta, details: { before, after } }, tx);
      return after;
    });
  }
}
