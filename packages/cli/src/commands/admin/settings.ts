/** `pa admin settings …` and `pa admin keys …`. */
import type { CommandSpec } from '../../args/parser';
import type { CommandContext } from '../../command-context';
import { formatJson, formatTable, formatTime } from '../../output/format';
import { field, jsonFlag, parsePage, printRecord, type Row } from '../shared';

/** `true`, `12`, `"x"`, `null` are JSON; anything else is a string. */
const parseValue = (raw: string): unknown => {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
};

export const settingsCommand: CommandSpec<CommandContext> = {
  name: 'settings',
  summary: 'Show and change instance settings',
  subcommands: [
    {
      name: 'get',
      summary: 'Show the settings',
      flags: [jsonFlag],
      run: async (ctx, input) => {
        const res = await ctx.session().request('GET', '/settings');
        printRecord(ctx, input.boolean('json'), res.body);
      },
    },
    {
      name: 'set',
      summary: 'Change settings: KEY=VALUE... (values are JSON when they parse, else strings)',
      args: [{ name: 'key=value', description: 'A setting and its new value', required: true, variadic: true }],
      flags: [jsonFlag],
      examples: ['pa admin settings set selfRegistration=true'],
      run: async (ctx, input) => {
        const body: Row = {};
        for (const pair of input.args) {
          const eq = pair.indexOf('=');
          if (eq <= 0) throw input.usageError(`expected KEY=VALUE, not "${pair}"`);
          body[pair.slice(0, eq)] = parseValue(pair.slice(eq + 1));
        }
        const res = await ctx.session().request('PATCH', '/settings', { body });
        printRecord(ctx, input.boolean('json'), res.body);
      },
    },
  ],
};

export const keysCommand: CommandSpec<CommandContext> = {
  name: 'keys',
  summary: 'List and rotate signing keys',
  subcommands: [
    {
      name: 'list',
      aliases: ['ls'],
      summary: 'List signing keys (public metadata)',
      flags: [jsonFlag],
      run: async (ctx, input) => {
        const res = await ctx.session().request('GET', '/keys');
        const { items } = parsePage({ nextCursor: null, ...(res.body as Row) }, 'keys');
        if (input.boolean('json')) {
          ctx.out(formatJson(items));
          return;
        }
        ctx.out(
          formatTable(items, [
            { header: 'kid', value: (k) => field(k, 'kid') },
            { header: 'use', value: (k) => field(k, 'use') },
            { header: 'alg', value: (k) => field(k, 'alg') },
            { header: 'activated', value: (k) => (typeof k.activatedAt === 'string' ? formatTime(k.activatedAt) : '-') },
            { header: 'retired', value: (k) => (typeof k.retiredAt === 'string' ? formatTime(k.retiredAt) : '-') },
          ]),
        );
      },
    },
    {
      name: 'rotate',
      summary: 'Rotate a signing key (the old one verifies until what it signed expires)',
      flags: [{ name: 'use', type: 'string', valueName: 'USE', choices: ['access', 'grant'], description: 'Which key (default access)' }],
      run: async (ctx, input) => {
        const res = await ctx.session().request('POST', '/keys/rotate', { body: { use: input.string('use') ?? 'access' } });
        ctx.out(`New ${input.string('use') ?? 'access'} signing key: ${field((res.body ?? {}) as Row, 'kid')}\n`);
      },
    },
  ],
};
