import { z } from 'zod';
import { passwordSchema } from '../../domain/auth/passwords';
import type { UserService } from '../../domain/users/users';
import { route, mustPrincipal } from '../route';
import { email, idParam, name63, pageOf, pageQuery, problemSchema, username } from '../schemas';

export const userSchema = z
  .object({
    id: z.string(),
    username: z.string(),
    email: z.string().nullable(),
    displayName: z.string(),
    disabled: z.boolean(),
    roles: z.array(z.string()),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'User' });

export const userRoutes = (users: UserService) => [
  route({
    method: 'get',
    path: '/users',
    summary: 'List users',
    tag: 'users',
    access: 'users:read',
    query: pageQuery.extend({ q: z.string().max(100).optional() }),
    responses: { 200: { description: 'A page of users', schema: pageOf(userSchema) } },
    handler: async ({ query }) => ({ body: await users.list(query.limit, query.cursor, query.q) }),
  }),
  route({
    method: 'post',
    path: '/users',
    summary: 'Create a user',
    tag: 'users',
    access: 'users:write',
    body: z.strictObject({
      username,
      password: passwordSchema,
      email: email.nullable().optional(),
      displayName: z.string().max(200).optional(),
      roles: z.array(name63).max(50).default([]),
    }),
    responses: { 201: { description: 'Created', schema: userSchema }, 409: { description: 'Username or email taken', schema: problemSchema } },
    handler: async (ctx) => ({ status: 201, body: await users.create(ctx.body, mustPrincipal(ctx), ctx.meta) }),
  }),
  route({
    method: 'get',
    path: '/users/:id',
    summary: 'Get a user by id or username',
    tag: 'users',
    access: 'users:read',
    params: idParam,
    responses: { 200: { description: 'The user', schema: userSchema }, 404: { description: 'No such user', schema: problemSchema } },
    handler: async ({ params }) => ({ body: await users.get(params.id) }),
  }),
  route({
    method: 'patch',
    path: '/users/:id',
    summary: 'Update a user: email, display name, disabled, roles',
    tag: 'users',
    access: 'users:write',
    params: idParam,
    body: z.strictObject({
      email: email.nullable().optional(),
      displayName: z.string().max(200).optional(),
      disabled: z.boolean().optional(),
      roles: z.array(name63).max(50).optional(),
    }),
    responses: { 200: { description: 'Updated', schema: userSchema }, 404: { description: 'No such user', schema: problemSchema }, 409: { description: 'Conflict', schema: problemSchema } },
    handler: async (ctx) => ({ body: await users.update(ctx.params.id, ctx.body, mustPrincipal(ctx), ctx.meta) }),
  }),
  route({
    method: 'delete',
    path: '/users/:id',
    summary: 'Delete a user',
    tag: 'users',
    access: 'users:write',
    params: idParam,
    responses: { 204: { description: 'Deleted' }, 404: { description: 'No such user', schema: problemSchema } },
    handler: async (ctx) => {
      await users.delete(ctx.params.id, mustPrincipal(ctx), ctx.meta);
      return { status: 204 };
    },
  }),
  route({
    method: 'post',
    path: '/users/:id/password',
    summary: "Reset a user's password (their sessions end)",
    tag: 'users',
    access: 'users:write',
    params: idParam,
    body: z.strictObject({ password: passwordSchema }),
    responses: { 204: { description: 'Reset' }, 404: { description: 'No such user', schema: problemSchema } },
    handler: async (ctx) => {
      await users.resetPassword(ctx.params.id, ctx.body.password, mustPrincipal(ctx), ctx.meta);
      return { status: 204 };
    },
  }),
];
