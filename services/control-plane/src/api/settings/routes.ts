import { settingsPatchSchema, settingsSchema, type SettingsService } from '../../domain/settings/settings';
import { route, mustPrincipal } from '../route';
import { problemSchema } from '../schemas';

export const settingsRoutes = (settings: SettingsService) => [
  route({
    method: 'get',
    path: '/settings',
    summary: 'Instance settings',
    tag: 'settings',
    access: 'settings:read',
    responses: { 200: { description: 'Settings', schema: settingsSchema } },
    handler: async () => ({ body: await settings.get() }),
  }),
  route({
    method: 'patch',
    path: '/settings',
    summary: 'Change instance settings (e.g. switch self-registration on)',
    tag: 'settings',
    access: 'settings:write',
    body: settingsPatchSchema,
    responses: { 200: { description: 'Settings after the change', schema: settingsSchema }, 400: { description: 'Invalid', schema: problemSchema } },
    handler: async (ctx) => ({ body: await settings.update(ctx.body, mustPrincipal(ctx), ctx.meta) }),
  }),
];
