/** `pa context list|use|current|delete|rename`: several control planes, kubectl-style. */
import { closest, type CommandSpec } from '../args/parser';
import type { CommandContext } from '../command-context';
import { CliError, EXIT } from '../errors';
import { formatJson, formatTable } from '../output/format';
import { contextNameSchema, type ConfigFile } from '../store/config-file';

const mustExist = (config: ConfigFile, name: string): void => {
  if (config.contexts[name]) return;
  const guess = closest(name, Object.keys(config.contexts));
  throw new CliError(`there is no context named "${name}"${guess ? ` (did you mean ${guess}?)` : ''}: see \`pa context list\``, EXIT.NOT_FOUND);
};

export const contextCommand: CommandSpec<CommandContext> = {
  name: 'context',
  aliases: ['ctx'],
  summary: 'List and switch between control planes (contexts)',
  subcommands: [
    {
      name: 'list',
      aliases: ['ls'],
      summary: 'List contexts',
      flags: [
        { name: 'json', type: 'boolean', description: 'Print JSON' },
        { name: 'quiet', short: 'q', type: 'boolean', description: 'Print names only' },
      ],
      run: async (ctx, input) => {
        const config = ctx.store.read();
        const rows = Object.entries(config.contexts)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([name, c]) => ({ name, current: name === config.currentContext, server: c.server, user: c.user?.username ?? null, loggedIn: Boolean(c.accessToken || c.refreshToken) }));
        if (input.boolean('json')) {
          ctx.out(formatJson(rows));
          return;
        }
        if (input.boolean('quiet')) {
          if (rows.length) ctx.out(`${rows.map((r) => r.name).join('\n')}\n`);
          return;
        }
        if (rows.length === 0) {
          ctx.note('No contexts yet: run `pa login --server URL`.');
          return;
        }
        ctx.out(
          formatTable(rows, [
            { header: 'current', value: (r) => (r.current ? '*' : '') },
            { header: 'name', value: (r) => r.name },
            { header: 'server', value: (r) => r.server },
            { header: 'user', value: (r) => r.user ?? '-' },
            { header: 'logged in', value: (r) => (r.loggedIn ? 'yes' : 'no') },
          ]),
        );
      },
    },
    {
      name: 'current',
      summary: 'Print the current context',
      run: async (ctx) => {
        const name = ctx.contextName();
        if (!name) throw new CliError('no current context: run `pa login --server URL`', EXIT.NEEDS_LOGIN);
        ctx.out(`${name}\n`);
      },
    },
    {
      name: 'use',
      summary: 'Make a context the current one',
      args: [{ name: 'name', description: 'Context name', required: true }],
      run: async (ctx, input) => {
        const name = input.requiredArg(0);
        const server = await ctx.store.update((config) => {
          mustExist(config, name);
          config.currentContext = name;
          return config.contexts[name]?.server;
        });
        ctx.out(`Switched to context "${name}" (${server}).\n`);
      },
    },
    {
      name: 'delete',
      aliases: ['rm'],
      summary: 'Forget a context and its tokens (run `pa logout` first to end the session on the server)',
      args: [{ name: 'name', description: 'Context name', required: true }],
      run: async (ctx, input) => {
        const name = input.requiredArg(0);
        await ctx.store.update((config) => {
          mustExist(config, name);
          delete config.contexts[name];
          if (config.currentContext === name) config.currentContext = null;
        });
        ctx.out(`Deleted context "${name}".\n`);
      },
    },
    {
      name: 'rename',
      summary: 'Rename a context',
      args: [
        { name: 'old', description: 'Current name', required: true },
        { name: 'new', description: 'New name', required: true },
      ],
      run: async (ctx, input) => {
        const from = input.requiredArg(0);
        const to = input.requiredArg(1);
        const valid = contextNameSchema.safeParse(to);
        if (!valid.success) throw input.usageError(`<new>: ${valid.error.issues[0]?.message ?? 'invalid name'}`);
        await ctx.store.update((config) => {
          mustExist(config, from);
          if (from === to) return;
          if (config.contexts[to]) throw new CliError(`a context named "${to}" already exists: delete it first`);
          config.contexts[to] = config.contexts[from] as NonNullable<(typeof config.contexts)[string]>;
          delete config.contexts[from];
          if (config.currentContext === from) config.currentContext = to;
        });
        ctx.out(`Renamed context "${from}" to "${to}".\n`);
      },
    },
  ],
};
