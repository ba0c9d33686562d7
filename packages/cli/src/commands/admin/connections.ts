/** `pa admin connections …` over `/api/v1/connections`. */
import type { CommandSpec } from '../../args/parser';
import type { CommandContext } from '../../command-context';
import { formatJson, formatTags } from '../../output/format';
import { cursorFlag, enc, field, jsonFlag, limitFlag, listPage, parseKeyValues, printRecord, readSecret, type Row } from '../shared';

const PROTOCOLS = ['postgres', 'http', 'tcp'] as const;
const TLS_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;

export const connectionsCommand: CommandSpec<CommandContext> = {
  name: 'connections',
  summary: 'Manage connections (backends)',
  subcommands: [
    {
      name: 'list',
      aliases: ['ls'],
      summary: 'List every connection',
      flags: [
        { name: 'protocol', type: 'string', valueName: 'PROTOCOL', choices: PROTOCOLS, description: 'Only this protocol' },
        { name: 'tag', type: 'string', valueName: 'KEY=VALUE', description: 'Only connections with this tag' },
        limitFlag,
        cursorFlag,
        jsonFlag,
      ],
      run: async (ctx, input) =>
        listPage(
          ctx,
          input,
          '/connections',
          'connections',
          [
            { header: 'name', value: (c) => field(c, 'name') },
            { header: 'protocol', value: (c) => field(c, 'protocol') },
            { header: 'address', value: (c) => `${field(c, 'host')}:${field(c, 'port')}` },
            { header: 'database', value: (c) => field(c, 'database') },
            { header: 'credential', value: (c) => (c.credential && typeof c.credential === 'object' ? field(c.credential as Row, 'kind') : 'none') },
            { header: 'tags', value: (c) => formatTags(c.tags as Record<string, string> | undefined) || '-', maxWidth: 80 },
          ],
          { scope: 'all', protocol: input.string('protocol'), tag: input.string('tag') },
        ),
    },
    {
      name: 'get',
      summary: 'Show a connection (its credential is never shown)',
      args: [{ name: 'connection', description: 'Connection id or name', required: true }],
      flags: [jsonFlag],
      run: async (ctx, input) => {
        const res = await ctx.session().request('GET', `/connections/${enc(input.requiredArg(0))}`);
        printRecord(ctx, input.boolean('json'), res.body);
      },
    },
    {
      name: 'create',
      summary: 'Create a connection',
      description:
        'Create a connection. A backend credential is optional and write-only: a username with the password read from stdin (postgres, http basic), or an HTTP header with its value read from stdin (http).',
      args: [{ name: 'name', description: 'Connection name', required: true }],
      flags: [
        { name: 'protocol', type: 'string', valueName: 'PROTOCOL', choices: PROTOCOLS, description: 'Backend protocol (required)' },
        { name: 'host', type: 'string', valueName: 'HOST', description: 'Backend host name or IP (required)' },
        { name: 'port', type: 'number', valueName: 'PORT', description: 'Backend port (required)' },
        { name: 'database', type: 'string', valueName: 'NAME', description: 'PostgreSQL database' },
        { name: 'tls-mode', type: 'string', valueName: 'MODE', choices: TLS_MODES, description: 'TLS to the backend' },
        { name: 'description', short: 'd', type: 'string', valueName: 'TEXT', description: 'Shown in `pa list`' },
        { name: 'tag', short: 't', type: 'list', valueName: 'KEY=VALUE', description: 'A tag policies can select on (repeatable)' },
        { name: 'max-grant-seconds', type: 'number', valueName: 'SECONDS', description: 'Longest grant for this connection' },
        { name: 'credential-username', type: 'string', valueName: 'USER', description: 'Backend username (password from --credential-password-stdin)' },
        { name: 'credential-password-stdin', type: 'boolean', description: 'Read the backend password from stdin' },
        { name: 'credential-header', type: 'string', valueName: 'NAME', description: 'HTTP header the proxy adds (value from --credential-value-stdin)' },
        { name: 'credential-value-stdin', type: 'boolean', description: 'Read the header value from stdin' },
        jsonFlag,
      ],
      examples: [
        'printf %s "$DB_PASSWORD" | pa admin connections create reports-db --protocol postgres --host db.internal --port 5432 \\\n      --database reports --tag env=prod --credential-username reports_ro --credential-password-stdin',
        'pa admin connections create wiki --protocol http --host wiki.internal --port 80 -t team=docs',
      ],
      run: async (ctx, input) => {
        const name = input.requiredArg(0);
        const protocol = input.string('protocol');
        const host = input.string('host');
        const port = input.number('port');
        if (!protocol || !host || port === undefined) throw input.usageError('--protocol, --host and --port are required');
        const credUser = input.string('credential-username');
        const credHeader = input.string('credential-header');
        if (credUser && credHeader) throw input.usageError('give --credential-username or --credential-header, not both');
        if (input.boolean('credential-password-stdin') && !credUser) throw input.usageError('--credential-password-stdin needs --credential-username');
        if (input.boolean('credential-value-stdin') && !credHeader) throw input.usageError('--credential-value-stdin needs --credential-header');
        let credential: Row | undefined;
        if (credUser) {
          const password = await readSecret(ctx, { fromStdin: input.boolean('credential-password-stdin'), prompt: `Backend password for ${credUser}: `, flag: '--credential-password-stdin' });
          credential = { kind: 'password', username: credUser, password };
        } else if (credHeader) {
          const value = await readSecret(ctx, { fromStdin: input.boolean('credential-value-stdin'), prompt: `Value of ${credHeader}: `, flag: '--credential-value-stdin' });
          credential = { kind: 'header', headerName: credHeader, value };
        }
        const tags = parseKeyValues(input, 'tag');
        const body: Row = {
          name,
          protocol,
          host,
          port,
          ...(input.has('database') ? { database: input.string('database') } : {}),
          ...(input.has('tls-mode') ? { tlsMode: input.string('tls-mode') } : {}),
          ...(input.has('description') ? { description: input.string('description') } : {}),
          ...(Object.keys(tags).length ? { tags } : {}),
          ...(input.has('max-grant-seconds') ? { maxGrantSeconds: input.number('max-grant-seconds') } : {}),
          ...(credential ? { credential } : {}),
        };
        const res = await ctx.session().request('POST', '/connections', { body });
        if (input.boolean('json')) ctx.out(formatJson(res.body));
        else ctx.out(`Created connection ${name} (${field(res.body as Row, 'id')}).\n`);
      },
    },
    {
      name: 'delete',
      aliases: ['rm'],
      summary: 'Delete a connection',
      args: [{ name: 'connection', description: 'Connection id or name', required: true }],
      run: async (ctx, input) => {
        await ctx.session().request('DELETE', `/connections/${enc(input.requiredArg(0))}`);
        ctx.out(`Deleted connection ${input.requiredArg(0)}.\n`);
      },
    },
  ],
};
