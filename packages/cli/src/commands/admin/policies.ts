/** `pa admin policies …` over `/api/v1/policies`. */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import type { CommandSpec, ParsedInput } from '../../args/parser';
import type { CommandContext } from '../../command-context';
import { CliError, EXIT, SilentExit } from '../../errors';
import { formatJson } from '../../output/format';
import { readAllInput } from '../../prompt';
import { cursorFlag, enc, field, jsonFlag, limitFlag, listPage, type Row } from '../shared';

const fileFlag = { name: 'file', short: 'f', type: 'string', valueName: 'FILE', description: 'Policy document, JSON or YAML ("-" reads stdin)' } as const;

/** JSON, else YAML. */
const parseDocument = (text: string): unknown => (/^\s*[[{]/.test(text) ? JSON.parse(text) : YAML.parse(text));

/** Reads a policy document from a file or stdin, as JSON or YAML. */
const readDocument = async (ctx: CommandContext, input: ParsedInput): Promise<unknown> => {
  const file = input.string('file');
  if (!file) throw input.usageError('give the policy document with -f FILE (or -f - for stdin)');
  let text: string;
  try {
    text = file === '-' ? await readAllInput(ctx.io.stdin, 4 * 1024 * 1024) : readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, EXIT.ERROR, { cause: err });
  }
  try {
    return parseDocument(text);
  } catch (err) {
    throw new CliError(`${file === '-' ? 'stdin' : file} is neither valid JSON nor valid YAML: ${(err as Error).message}`, EXIT.ERROR, { cause: err });
  }
};

/** One line per statement of an explanation, when the server gives them. */
const statementLines = (statements: unknown): string[] => {
  if (!Array.isArray(statements)) return [];
  return statements.map((s, i) => {
    const row = (s && typeof s === 'object' ? s : {}) as Row;
    const parts = [field(row, 'decision'), field(row, 'kind', 'type'), field(row, 'reason')].filter((p) => p !== '-');
    return `  [${i + 1}] ${parts.join('  ')}`;
  });
};

export const policiesCommand: CommandSpec<CommandContext> = {
  name: 'policies',
  summary: 'Manage policies and explain decisions',
  subcommands: [
    {
      name: 'list',
      aliases: ['ls'],
      summary: 'List policies',
      flags: [limitFlag, cursorFlag, jsonFlag],
      run: async (ctx, input) =>
        listPage(ctx, input, '/policies', 'policies', [
          { header: 'name', value: (p) => field(p, 'name') },
          { header: 'enabled', value: (p) => (p.enabled === false ? 'no' : 'yes') },
          { header: 'roles', value: (p) => field(p, 'roles') },
          { header: 'rules', value: (p) => (Array.isArray(p.rules) ? String(p.rules.length) : '-') },
          { header: 'version', value: (p) => field(p, 'version') },
          { header: 'description', value: (p) => field(p, 'description') },
        ]),
    },
    {
      name: 'get',
      summary: 'Show a policy (JSON: rules are nested)',
      args: [{ name: 'policy', description: 'Policy id or name', required: true }],
      flags: [{ name: 'yaml', type: 'boolean', description: 'Print YAML instead of JSON' }],
      run: async (ctx, input) => {
        const res = await ctx.session().request('GET', `/policies/${enc(input.requiredArg(0))}`);
        ctx.out(input.boolean('yaml') ? YAML.stringify(res.body) : formatJson(res.body));
      },
    },
    {
      name: 'create',
      summary: 'Create a policy from a JSON or YAML document',
      flags: [fileFlag, jsonFlag],
      examples: ['pa admin policies create -f analysts.yaml'],
      run: async (ctx, input) => {
        const doc = await readDocument(ctx, input);
        const res = await ctx.session().request('POST', '/policies', { body: doc });
        if (input.boolean('json')) ctx.out(formatJson(res.body));
        else ctx.out(`Created policy ${field(res.body as Row, 'name')} (${field(res.body as Row, 'id')}), version ${field(res.body as Row, 'version')}.\n`);
      },
    },
    {
      name: 'validate',
      summary: 'Check a policy document without saving it',
      flags: [fileFlag],
      run: async (ctx, input) => {
        const doc = await readDocument(ctx, input);
        await ctx.session().request('POST', '/policies/validate', { body: doc });
        ctx.out('The policy is valid.\n');
      },
    },
    {
      name: 'delete',
      aliases: ['rm'],
      summary: 'Delete a policy',
      args: [{ name: 'policy', description: 'Policy id or name', required: true }],
      run: async (ctx, input) => {
        await ctx.session().request('DELETE', `/policies/${enc(input.requiredArg(0))}`);
        ctx.out(`Deleted policy ${input.requiredArg(0)}.\n`);
      },
    },
    {
      name: 'evaluate',
      aliases: ['explain'],
      summary: 'Explain what the proxy would decide for SQL or an HTTP request',
      flags: [
        { name: 'connection', short: 'c', type: 'string', valueName: 'NAME', description: 'Connection name or id (required)' },
        { name: 'user', short: 'u', type: 'string', valueName: 'USER', description: 'Evaluate as this user' },
        { name: 'role', short: 'r', type: 'list', valueName: 'ROLE', description: 'Or as these roles (repeatable)' },
        { name: 'sql', type: 'string', valueName: 'SQL', description: 'SQL to judge' },
        { name: 'method', type: 'string', valueName: 'METHOD', description: 'HTTP method (with --target)' },
        { name: 'target', type: 'string', valueName: 'PATH', description: 'HTTP request target, e.g. /api/items?x=1' },
        { name: 'draft', type: 'list', valueName: 'FILE', description: 'An unsaved policy document to try (repeatable)' },
        { name: 'fail-on-deny', type: 'boolean', description: 'Exit with code 3 when the decision is deny' },
        jsonFlag,
      ],
      examples: ['pa admin policies evaluate -c reports-db -u alice --sql "DELETE FROM orders"', 'pa admin policies evaluate -c wiki -r editor --method POST --target /pages/1'],
      run: async (ctx, input) => {
        const connection = input.string('connection');
        if (!connection) throw input.usageError('--connection is required');
        const user = input.string('user');
        const roles = input.list('role');
        if ((user === undefined) === (roles.length === 0)) throw input.usageError('give either --user or --role');
        const sql = input.string('sql');
        const method = input.string('method');
        const target = input.string('target');
        if ((sql === undefined) === (method === undefined && target === undefined)) throw input.usageError('give either --sql or --method with --target');
        if (sql === undefined && (!method || !target)) throw input.usageError('--method and --target go together');
        const drafts: unknown[] = [];
        for (const file of input.list('draft')) {
          try {
            const text = readFileSync(file, 'utf8');
            drafts.push(parseDocument(text));
          } catch (err) {
            throw new CliError(`cannot use the draft ${file}: ${(err as Error).message}`, EXIT.ERROR, { cause: err });
          }
        }
        const body = {
          connection,
          ...(user !== undefined ? { user } : { roles }),
          ...(sql !== undefined ? { sql } : { http: { method: (method as string).toUpperCase(), target } }),
          ...(drafts.length ? { drafts } : {}),
        };
        const res = await ctx.session().request('POST', '/policies/evaluate', { body });
        const result = (res.body ?? {}) as Row;
        if (input.boolean('json')) ctx.out(formatJson(result));
        else {
          const rule = result.rule && typeof result.rule === 'object' ? (result.rule as Row) : null;
          const lines = [`${field(result, 'decision').toUpperCase()}: ${field(result, 'reason')}`];
          if (rule) lines.push(`rule: ${field(rule, 'policyName')} / ${field(rule, 'ruleName', 'ruleId')}`);
          lines.push(...statementLines(result.statements));
          ctx.out(`${lines.join('\n')}\n`);
        }
        if (input.boolean('fail-on-deny') && result.decision === 'deny') throw new SilentExit(EXIT.PERMISSION_DENIED);
      },
    },
  ],
};
