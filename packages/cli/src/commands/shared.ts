/** Flags and helpers shared by several commands. */
import { z } from 'zod';
import type { FlagSpec, ParsedInput } from '../args/parser';
import type { CommandContext } from '../command-context';
import { CliError } from '../errors';
import { formatJson, formatObject, formatTable, type Column } from '../output/format';
import { promptHidden, readAllInput } from '../prompt';

export const jsonFlag: FlagSpec = { name: 'json', type: 'boolean', description: 'Print JSON instead of a table' };
export const limitFlag: FlagSpec = { name: 'limit', type: 'number', valueName: 'N', description: 'Items per page (1-500, default 50)' };
export const cursorFlag: FlagSpec = { name: 'cursor', type: 'string', valueName: 'CURSOR', description: 'Continue a listing where the previous page ended' };

/** A row as the API returns it. */
export type Row = Record<string, unknown>;

const pageSchema = z.object({ items: z.array(z.record(z.string(), z.unknown())), nextCursor: z.string().nullable().optional() });

/** Reads a `{ items, nextCursor }` page. */
export const parsePage = (body: unknown, what: string): { items: Row[]; nextCursor: string | null } => {
  const parsed = pageSchema.safeParse(body);
  if (!parsed.success) throw new CliError(`the control plane answered the ${what} listing in an unexpected shape`);
  return { items: parsed.data.items, nextCursor: parsed.data.nextCursor ?? null };
};

/** A field of a row as text (`-` when absent). */
export const field = (row: Row, ...names: string[]): string => {
  for (const name of names) {
    const v = row[name];
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (Array.isArray(v)) return v.map(String).join(', ') || '-';
    if (v && typeof v === 'object') {
      const named = (v as Row).name ?? (v as Row).username ?? (v as Row).id;
      if (typeof named === 'string') return named;
    }
  }
  return '-';
};

/** Lists a paged collection: a table (or `--json` items), and a hint when there is more. */
export const listPage = async (
  ctx: CommandContext,
  input: ParsedInput,
  path: string,
  what: string,
  columns: readonly Column<Row>[],
  query: Record<string, string | number | undefined> = {},
): Promise<void> => {
  const res = await ctx.session().request('GET', path, { query: { limit: input.number('limit'), cursor: input.string('cursor'), ...query } });
  const page = parsePage(res.body, what);
  if (input.boolean('json')) ctx.out(formatJson(page.items));
  else if (page.items.length === 0) ctx.note(`No ${what}.`);
  else ctx.out(formatTable(page.items, columns));
  if (page.nextCursor) ctx.note(`More: add --cursor ${page.nextCursor}`);
};

/**
 * Reads a secret for a command: from stdin when `fromStdin`, else with a
 * hidden prompt (asked twice when `confirm`), else an error naming the flag.
 */
export const readSecret = async (
  ctx: CommandContext,
  options: { fromStdin: boolean; prompt: string; flag: string; confirm?: boolean },
): Promise<string> => {
  let secret: string;
  if (options.fromStdin) {
    secret = await readAllInput(ctx.io.stdin);
  } else if (ctx.io.stdin.isTTY) {
    secret = await promptHidden(options.prompt, ctx.io.stdin, ctx.io.stderr);
    if (options.confirm) {
      const again = await promptHidden('Again: ', ctx.io.stdin, ctx.io.stderr);
      if (again !== secret) throw new CliError('the two entries differ; nothing was changed');
    }
  } else {
    throw new CliError(`the input is not a terminal: pass the secret on stdin with ${options.flag}`);
  }
  if (secret.length === 0) throw new CliError('the secret is empty');
  return secret;
};

/** Parses repeated `key=value` flags into a map. */
export const parseKeyValues = (input: ParsedInput, flag: string): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const item of input.list(flag)) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw input.usageError(`--${flag} takes key=value, not "${item}"`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
};

/** Prints one record: JSON with --json, else its fields. */
export const printRecord = (ctx: CommandContext, json: boolean, body: unknown): void => {
  ctx.out(json || !body || typeof body !== 'object' || Array.isArray(body) ? formatJson(body) : formatObject(body as Row));
};

/** A path segment from user input. */
export const enc = (segment: string): string => encodeURIComponent(segment);
