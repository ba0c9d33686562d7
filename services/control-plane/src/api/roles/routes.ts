import { z } from 'zod';
import { PERMISSIONS } from '../../domain/permissions';
import type { RoleService } from '../../domain/roles/roles';
import { route, mustPrincipal } from '../route';
import { idParam, name63, pageOf, pageQuery, problemSchema } from '../schemas';

export const roleSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string(),
    permissions: z.array(z.enum(PERMISSIONS)),
    builtIn: z.boolean(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Role' });

const roleBody = z.strictObject({
  name: name63,
  description: z.string().max(1000).optional(),
  permissions: z.array(z.enum(PERMISSIONS)).max(PERMISSIONS.length),
});

export const roleRoutes = (roles: RoleService) => [
  route({
    method: 'get',
    path: '/roles',
    summary: 'List roles',
    tag: 'roles',
    access: 'roles:read',
    query: pageQuery,
    responses: { 200: { description: 'A page of roles', schema: pageOf(roleSchema) } },
    handler: async ({ query }) => ({ body: await roles.list(query.limit, query.cursor) }),
  }),
  route({
    method: 'get',
    path: '/roles/permissions',
    summary: 'Every permission a role can carry',
    tag: 'roles',
    access: 'roles:read',
    responses: { 200: { description: 'Permissions', schema: z.object({ permissions: z.array(z.string()) }) } },
    handler: async () => ({ body: { permissions: [...PERMISSIONS] } }),
  }),
  route({
    method: 'post',
    path: '/roles',
    summary: 'Create a role',
    tag: 'roles',
    access: 'roles:write',
    body: roleBody,
    responses: { 201: { description: 'Created', schema: roleSchema }, 409: { description: 'Name taken', schema: problemSchema } },
    handler: async (ctx) => ({ status: 201, body: await roles.create(ctx.body, mustPrincipal(ctx), ctx.meta) }),
  }),
  route({
    method: 'get',
    path: '/roles/:id',
    summary: 'Get a role by id or name',
    tag: 'roles',
    access: 'roles:read',
    params: idParam,
    responses: { 200: { description: 'The role', schema: roleSchema }, 404: { description: 'No such role', schema: problemSchema } },
    handler: async ({ params }) => ({ body: await roles.get(params.id) }),
  }),
  route({
    method: 'patch',
    path: '/roles/:id',
    summary: 'Update a role',
    tag: 'roles',
    access: 'roles:write',
    params: idParam,
    body: roleBody.partial(),
    responses: { 200: { description: 'Updated', schema: roleSchema }, 409: { description: 'Built-in or would lock everyone out', schema: problemSchema } },
    handler: async (ctx) => ({ body: await roles.update(ctx.params.id, ctx.body, mustPrincipal(ctx), ctx.meta) }),
  }),
  route({
    method: 'delete',
    path: '/roles/:id',
    summary: 'Delete a role',
    tag: 'roles',
    access: 'roles:write',
    params: idParam,
    responses: { 204: { description: 'Deleted' }, 409: { description: 'Built-in or would lock everyone out', schema: problemSchema } },
    handler: async (ctx) => {
      await roles.delete(ctx.params.id, mustPrincipal(ctx), ctx.meta);
      return { status: 204 };
    },
  }),
];
