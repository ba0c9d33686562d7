import { z } from 'zod';
import type { AuthService } from '../../domain/auth/auth-service';
import { passwordSchema } from '../../domain/auth/passwords';
import type { KeyRing } from '../../domain/auth/key-ring';
import type { UserService } from '../../domain/users/users';
import { userSchema } from '../users/routes';
import { route, mustPrincipal } from '../route';
import { email, problemSchema, username } from '../schemas';

const tokenPairSchema = z.object({
  tokenType: z.literal('Bearer'),
  accessToken: z.string(),
  expiresIn: z.number().int(),
  refreshToken: z.string(),
  refreshExpiresIn: z.number().int(),
  sessionId: z.string(),
});

const jwksSchema = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

export const authRoutes = (auth: AuthService, users: UserService, accessKeys: KeyRing) => [
  route({
    method: 'post',
    path: '/auth/login',
    summary: 'Log in with a username and password',
    tag: 'auth',
    access: 'public',
    body: z.strictObject({ username: z.string().min(1).max(200), password: z.string().min(1).max(1000) }),
    responses: {
      200: { description: 'Tokens and the user', schema: tokenPairSchema.extend({ user: userSchema }) },
      401: { description: 'Wrong credentials', schema: problemSchema },
      429: { description: 'Too many failed attempts', schema: problemSchema },
    },
    handler: async ({ body, meta }) => ({ body: await auth.login(body.username, body.password, meta) }),
  }),
  route({
    method: 'post',
    path: '/auth/refresh',
    summary: 'Exchange a refresh token for new tokens (the old one is spent)',
    tag: 'auth',
    access: 'public',
    body: z.strictObject({ refreshToken: z.string().min(1).max(200) }),
    responses: { 200: { description: 'New tokens', schema: tokenPairSchema }, 401: { description: 'Invalid, spent or revoked', schema: problemSchema } },
    handler: async ({ body, meta }) => ({ body: await auth.refresh(body.refreshToken, meta) }),
  }),
  route({
    method: 'post',
    path: '/auth/logout',
    summary: 'End the current login session',
    tag: 'auth',
    access: 'user',
    responses: { 204: { description: 'Logged out' } },
    handler: async (ctx) => {
      await auth.logout(mustPrincipal(ctx), ctx.meta);
      return { status: 204 };
    },
  }),
  route({
    method: 'get',
    path: '/auth/me',
    summary: 'The signed-in user, their roles and permissions',
    tag: 'auth',
    access: 'user',
    responses: { 200: { description: 'The caller', schema: userSchema.extend({ permissions: z.array(z.string()), sessionId: z.string() }) } },
    handler: async (ctx) => {
      const p = mustPrincipal(ctx);
      const user = await users.get(p.userId);
      return { body: { ...user, permissions: [...p.permissions].sort(), sessionId: p.sessionId } };
    },
  }),
  route({
    method: 'post',
    path: '/auth/password',
    summary: 'Change your own password (other sessions end)',
    tag: 'auth',
    access: 'user',
    body: z.strictObject({ currentPassword: z.string().min(1).max(1000), newPassword: passwordSchema }),
    responses: { 204: { description: 'Changed' }, 400: { description: 'Current password wrong', schema: problemSchema } },
    handler: async (ctx) => {
      await users.changeOwnPassword(mustPrincipal(ctx), ctx.body.currentPassword, ctx.body.newPassword, ctx.meta);
      return { status: 204 };
    },
  }),
  route({
    method: 'post',
    path: '/auth/register',
    summary: 'Create an account (only when an admin has enabled self-registration)',
    tag: 'auth',
    access: 'public',
    body: z.strictObject({ username, password: passwordSchema, email: email.optional(), displayName: z.string().max(200).optional() }),
    responses: { 201: { description: 'Created', schema: userSchema }, 403: { description: 'Registration disabled', schema: problemSchema }, 409: { description: 'Username or email taken', schema: problemSchema } },
    handler: async ({ body, meta }) => ({ status: 201, body: await auth.register(body, meta) }),
  }),
  route({
    method: 'get',
    path: '/auth/jwks',
    summary: 'Public keys that verify access tokens (JWKS)',
    tag: 'auth',
    access: 'public',
    responses: { 200: { description: 'JSON Web Key Set', schema: jwksSchema } },
    handler: async () => ({ body: { keys: accessKeys.publicKeys().map((k) => k.jwk) }, headers: { 'Cache-Control': 'public, max-age=60' } }),
  }),
];
