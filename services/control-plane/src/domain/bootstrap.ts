import { randomBytes } from 'node:crypto';
import { AppError } from '@pa/kit';
import type { ControlPlane } from '../services';
import { PERMISSIONS } from './permissions';

export interface BootstrapResult {
  username: string;
  /** Present only when generated here: shown once, never stored in clear. */
  generatedPassword: string | null;
}

/**
 * On first start (no users at all), creates the first administrator, bound to
 * the built-in role that holds every permission. The password comes from
 * config (PA_ADMIN_PASSWORD) or is generated and returned to be shown once.
 */
export const bootstrapAdmin = async (cp: ControlPlane, username: string, password?: string): Promise<BootstrapResult | null> => {
  if ((await cp.users.count()) > 0) return null;
  const { rows } = await cp.db.query<{ name: string }>(
    'SELECT name FROM roles WHERE built_in AND permissions @> $1::text[] ORDER BY created_at LIMIT 1',
    [[...PERMISSIONS]],
  );
  const role = rows[0];
  if (!role) throw new AppError('INTERNAL', { message: 'No built-in role holds every permission.' });
  const generated = password ? null : randomBytes(18).toString('base64url');
  await cp.users.create({ username, password: password ?? (generated as string), displayName: 'Administrator', roles: [role.name] }, null, {}, 'user.bootstrap');
  return { username, generatedPassword: generated };
};
