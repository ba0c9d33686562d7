/** `pa admin grants …` over `/api/v1/grants`. */
import type { CommandSpec } from '../../args/parser';
import type { CommandContext } from '../../command-context';
import { formatTime } from '../../output/format';
import { cursorFlag, enc, field, jsonFlag, limitFlag, listPage, type Row } from '../shared';

const time = (row: Row, name: string): string => (typeof row[name] === 'string' ? formatTime(row[name] as string) : '-');

export const grantsCommand: CommandSpec<CommandContext> = {
  name: 'grants',
  summary: 'List and revoke issued grants',
  subcommands: [
    {
      name: 'list',
      aliases: ['ls'],
      summary: 'List grants',
      flags: [
        { name: 'user', short: 'u', type: 'string', valueName: 'USER', description: 'Only this user\'s grants' },
        { name: 'connection', short: 'c', type: 'string', valueName: 'NAME', description: 'Only grants to this connection' },
        { name: 'active', type: 'boolean', description: 'Only grants that are still valid' },
        limitFlag,
        cursorFlag,
        jsonFlag,
      ],
      run: async (ctx, input) =>
        listPage(
          ctx,
          input,
          '/grants',
          'grants',
          [
            { header: 'id', value: (g) => field(g, 'id', 'grantId') },
            { header: 'user', value: (g) => field(g, 'username', 'user', 'userId') },
            { header: 'connection', value: (g) => field(g, 'connectionName', 'connection', 'connectionId') },
            { header: 'issued', value: (g) => time(g, 'issuedAt') },
            { header: 'expires', value: (g) => time(g, 'expiresAt') },
            { header: 'active', value: (g) => (g.active === true ? 'yes' : g.active === false ? 'no' : '-') },
            { header: 'revoked', value: (g) => time(g, 'revokedAt') },
          ],
          { user: input.string('user'), connection: input.string('connection'), active: input.boolean('active') ? 'true' : undefined },
        ),
    },
    {
      name: 'revoke',
      summary: 'Revoke a grant: its tunnels close on every node and it cannot be renewed',
      args: [{ name: 'grant', description: 'Grant id (grt_…)', required: true }],
      flags: [{ name: 'reason', type: 'string', valueName: 'TEXT', description: 'Why (recorded in the audit trail)' }],
      run: async (ctx, input) => {
        const id = input.requiredArg(0);
        const reason = input.string('reason');
        await ctx.session().request('POST', `/grants/${enc(id)}/revoke`, reason !== undefined ? { body: { reason } } : {});
        ctx.out(`Revoked grant ${id}.\n`);
      },
    },
  ],
};
