/** `pa list`: the connections the user may reach. */
import { z } from 'zod';
import type { CommandSpec } from '../args/parser';
import type { AuthSession } from '../api/auth-session';
import type { CommandContext } from '../command-context';
import { CliError } from '../errors';
import { formatJson, formatTable, formatTags } from '../output/format';

export const reachableSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    protocol: z.string(),
    description: z.string().default(''),
    tags: z.record(z.string(), z.string()).default({}),
    database: z.string().nullable().optional(),
  })
  .passthrough();

export type Reachable = z.infer<typeof reachableSchema>;

/** The connections the logged-in user may reach (`GET /connections`). */
export const fetchReachable = async (session: AuthSession, protocol?: string): Promise<Reachable[]> => {
  const res = await session.request('GET', '/connections', { query: { protocol } });
  const parsed = z.object({ items: z.array(reachableSchema) }).safeParse(res.body);
  if (!parsed.success) throw new CliError('the control plane answered the connection listing in an unexpected shape');
  return parsed.data.items;
};

export const listCommand: CommandSpec<CommandContext> = {
  name: 'list',
  aliases: ['ls'],
  summary: 'List the connections you may reach',
  flags: [
    { name: 'json', type: 'boolean', description: 'Print JSON' },
    { name: 'quiet', short: 'q', type: 'boolean', description: 'Print names only' },
    { name: 'protocol', type: 'string', valueName: 'PROTOCOL', choices: ['postgres', 'http', 'tcp'], description: 'Only this protocol' },
  ],
  run: async (ctx, input) => {
    const items = await fetchReachable(ctx.session(), input.string('protocol'));
    if (input.boolean('json')) {
      ctx.out(formatJson(items));
      return;
    }
    if (input.boolean('quiet')) {
      if (items.length) ctx.out(`${items.map((c) => c.name).join('\n')}\n`);
      return;
    }
    if (items.length === 0) {
      ctx.note('No connections you may reach. Ask an administrator for access.');
      return;
    }
    ctx.out(
      formatTable(items, [
        { header: 'name', value: (c) => c.name },
        { header: 'protocol', value: (c) => c.protocol },
        { header: 'description', value: (c) => c.description || '-' },
        { header: 'tags', value: (c) => formatTags(c.tags) || '-', maxWidth: 80 },
      ]),
    );
  },
};
