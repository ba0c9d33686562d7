import { z } from 'zod';
import { AppError } from '@pa/kit';
import { actorOf, type AuditLog } from '../../domain/audit/audit-log';
import type { KeyRing } from '../../domain/auth/key-ring';
import { route, mustPrincipal } from '../route';

const keySchema = z
  .object({
    kid: z.string(),
    use: z.string(),
    alg: z.string(),
    createdAt: z.string(),
    activatedAt: z.string(),
    retiredAt: z.string().nullable(),
  })
  .meta({ id: 'SigningKey' });

/** Signing-key listing and rotation (public halves and metadata only). */
export const keyRoutes = (rings: Record<string, KeyRing>, audit: AuditLog, onRotated: () => void = () => undefined) => [
  route({
    method: 'get',
    path: '/keys',
    summary: 'Signing keys in use (public metadata)',
    tag: 'keys',
    access: 'keys:read',
    responses: { 200: { description: 'Keys', schema: z.object({ items: z.array(keySchema) }) } },
    handler: async () => ({
      body: { items: Object.values(rings).flatMap((r) => r.publicKeys().map(({ jwk: _jwk, ...k }) => k)) },
    }),
  }),
  route({
    method: 'post',
    path: '/keys/rotate',
    summary: 'Rotate a signing key; the old one keeps verifying until what it signed expires',
    tag: 'keys',
    access: 'keys:rotate',
    body: z.strictObject({ use: z.enum(['access', 'grant', 'node-encryption']).default('access') }),
    responses: { 200: { description: 'The new key id', schema: z.object({ kid: z.string() }) } },
    handler: async (ctx) => {
      const ring = rings[ctx.body.use];
      if (!ring) throw new AppError('KEY_NOT_FOUND', { message: `No ${ctx.body.use} signing keys on this control plane.` });
      const kid = await ring.rotate();
      onRotated();
      await audit.record({ action: 'key.rotate', outcome: 'success', actor: actorOf(mustPrincipal(ctx)), targetType: 'key', targetId: kid, request: ctx.meta, details: { use: ctx.body.use } });
      return { body: { kid } };
    },
  }),
];
