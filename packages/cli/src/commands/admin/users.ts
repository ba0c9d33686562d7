/** `pa admin users …` over `/api/v1/users`. */
import type { CommandSpec } from '../../args/parser';
import type { CommandContext } from '../../command-context';
import { formatJson, formatTime } from '../../output/format';
import { cursorFlag, enc, field, jsonFlag, limitFlag, listPage, printRecord, readSecret, type Row } from '../shared';

const idArg = { name: 'user', description: 'User id or username', required: true } as const;


export const usersCommand: CommandSpec<CommandContext> = {
  name: 'users',
  summary: 'Manage users',
  subcommands: [
    {
      name: 'list',
      aliases: ['ls'],
      summary: 'List users',
      flags: [{ name: 'query', short: 'q', type: 'string', valueName: 'TEXT', description: 'Filter by username, email or name' }, limitFlag, cursorFlag, jsonFlag],
      run: async (ctx, input) =>
        listPage(
          ctx,
          input,
          '/users',
          'users',
          [
            { header: 'username', value: (u) => field(u, 'username') },
            { header: 'id', value: (u) => field(u, 'id') },
            { header: 'roles', value: (u) => field(u, 'roles') },
            { header: 'disabled', value: (u) => (u.disabled === true ? 'yes' : 'no') },
            { header: 'email', value: (u) => field(u, 'email') },
            { header: 'created', value: (u) => (typeof u.createdAt === 'string' ? formatTime(u.createdAt) : '-') },
          ],
          { q: input.string('query') },
        ),
    },
    {
      name: 'get',
      summary: 'Show a user',
      args: [idArg],
      flags: [jsonFlag],
      run: async (ctx, input) => {
        const res = await ctx.session().request('GET', `/users/${enc(input.requiredArg(0))}`);
        printRecord(ctx, input.boolean('json'), res.body);
      },
    },
    {
      name: 'create',
      summary: 'Create a user (password asked twice, or read from stdin)',
      args: [{ name: 'username', description: 'Username', required: true }],
      flags: [
        { name: 'email', type: 'string', valueName: 'EMAIL', description: 'Email address' },
        { name: 'display-name', type: 'string', valueName: 'NAME', description: 'Display name' },
        { name: 'role', short: 'r', type: 'list', valueName: 'ROLE', description: 'A role to grant (repeatable)' },
        { name: 'password-stdin', type: 'boolean', description: 'Read the password from stdin' },
        jsonFlag,
      ],
      examples: ['pa admin users create alice --role analyst', 'printf %s "$PW" | pa admin users create bot --password-stdin'],
      run: async (ctx, input) => {
        const username = input.requiredArg(0);
        const password = await readSecret(ctx, { fromStdin: input.boolean('password-stdin'), prompt: `Password for ${username}: `, flag: '--password-stdin', confirm: true });
        const body = {
          username,
          password,
          roles: input.list('role'),
          ...(input.has('email') ? { email: input.string('email') } : {}),
          ...(input.has('display-name') ? { displayName: input.string('display-name') } : {}),
        };
        const res = await ctx.session().request('POST', '/users', { body });
        if (input.boolean('json')) ctx.out(formatJson(res.body));
        else ctx.out(`Created user ${username} (${field(res.body as Row, 'id')}).\n`);
      },
    },
    {
      name: 'update',
      summary: 'Change a user: email, display name, roles, enabled/disabled',
      args: [idArg],
      flags: [
        { name: 'email', type: 'string', valueName: 'EMAIL', description: 'New email ("" removes it)' },
        { name: 'display-name', type: 'string', valueName: 'NAME', description: 'New display name' },
        { name: 'role', short: 'r', type: 'list', valueName: 'ROLE', description: 'Replace the roles with these (repeatable)' },
        { name: 'no-roles', type: 'boolean', description: 'Remove every role' },
        { name: 'disable', type: 'boolean', description: 'Disable the account (its sessions end)' },
        { name: 'enable', type: 'boolean', description: 'Enable the account' },
        jsonFlag,
      ],
      run: async (ctx, input) => {
        if (input.boolean('disable') && input.boolean('enable')) throw input.usageError('give --disable or --enable, not both');
        if (input.has('role') && input.boolean('no-roles')) throw input.usageError('give --role or --no-roles, not both');
        const body: Row = {};
        if (input.has('email')) body.email = input.string('email') || null;
        if (input.has('display-name')) body.displayName = input.string('display-name');
        if (input.has('role')) body.roles = input.list('role');
        if (input.boolean('no-roles')) body.roles = [];
        if (input.boolean('disable')) body.disabled = true;
        if (input.boolean('enable')) body.disabled = false;
        if (Object.keys(body).length === 0) throw input.usageError('nothing to change: give at least one flag');
        const res = await ctx.session().request('PATCH', `/users/${enc(input.requiredArg(0))}`, { body });
        printRecord(ctx, input.boolean('json'), res.body);
      },
    },
    {
      name: 'delete',
      aliases: ['rm'],
      summary: 'Delete a user',
      args: [idArg],
      run: async (ctx, input) => {
        await ctx.session().request('DELETE', `/users/${enc(input.requiredArg(0))}`);
        ctx.out(`Deleted user ${input.requiredArg(0)}.\n`);
      },
    },
    {
      name: 'reset-password',
      summary: "Set a user's password (their sessions end)",
      args: [idArg],
      flags: [{ name: 'password-stdin', type: 'boolean', description: 'Read the new password from stdin' }],
      run: async (ctx, input) => {
        const user = input.requiredArg(0);
        const password = await readSecret(ctx, { fromStdin: input.boolean('password-stdin'), prompt: `New password for ${user}: `, flag: '--password-stdin', confirm: true });
        await ctx.session().request('POST', `/users/${enc(user)}/password`, { body: { password } });
        ctx.out(`Password of ${user} reset; their sessions have ended.\n`);
      },
    },
  ],
};
