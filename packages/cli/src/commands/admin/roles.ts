/** `pa admin roles …` over `/api/v1/roles`. */
import type { CommandSpec } from '../../args/parser';
import type { CommandContext } from '../../command-context';
import { formatJson } from '../../output/format';
import { cursorFlag, enc, field, jsonFlag, limitFlag, listPage, printRecord, type Row } from '../shared';

export const rolesCommand: CommandSpec<CommandContext> = {
  name: 'roles',
  summary: 'Manage roles',
  subcommands: [
    {
      name: 'list',
      aliases: ['ls'],
      summary: 'List roles',
      flags: [limitFlag, cursorFlag, jsonFlag],
      run: async (ctx, input) =>
        listPage(ctx, input, '/roles', 'roles', [
          { header: 'name', value: (r) => field(r, 'name') },
          { header: 'permissions', value: (r) => field(r, 'permissions'), maxWidth: 80 },
          { header: 'built-in', value: (r) => (r.builtIn === true ? 'yes' : 'no') },
          { header: 'description', value: (r) => field(r, 'description') },
        ]),
    },
    {
      name: 'get',
      summary: 'Show a role',
      args: [{ name: 'role', description: 'Role id or name', required: true }],
      flags: [jsonFlag],
      run: async (ctx, input) => {
        const res = await ctx.session().request('GET', `/roles/${enc(input.requiredArg(0))}`);
        printRecord(ctx, input.boolean('json'), res.body);
      },
    },
    {
      name: 'create',
      summary: 'Create a role',
      args: [{ name: 'name', description: 'Role name', required: true }],
      flags: [
        { name: 'description', short: 'd', type: 'string', valueName: 'TEXT', description: 'What the role is for' },
        { name: 'permission', short: 'p', type: 'list', valueName: 'PERMISSION', description: 'An admin permission, e.g. users:read (repeatable; none for plain users)' },
        jsonFlag,
      ],
      examples: ['pa admin roles create analyst -d "Read-only reporting"', 'pa admin roles create auditor -p audit:read'],
      run: async (ctx, input) => {
        const name = input.requiredArg(0);
        const body = { name, permissions: input.list('permission'), ...(input.has('description') ? { description: input.string('description') } : {}) };
        const res = await ctx.session().request('POST', '/roles', { body });
        if (input.boolean('json')) ctx.out(formatJson(res.body));
        else ctx.out(`Created role ${name} (${field(res.body as Row, 'id')}).\n`);
      },
    },
    {
      name: 'delete',
      aliases: ['rm'],
      summary: 'Delete a role',
      args: [{ name: 'role', description: 'Role id or name', required: true }],
      run: async (ctx, input) => {
        await ctx.session().request('DELETE', `/roles/${enc(input.requiredArg(0))}`);
        ctx.out(`Deleted role ${input.requiredArg(0)}.\n`);
      },
    },
  ],
};
