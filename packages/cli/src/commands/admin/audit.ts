/** `pa admin audit search|export` over `/api/v1/audit`. */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { CommandSpec, FlagSpec, ParsedInput } from '../../args/parser';
import type { CommandContext } from '../../command-context';
import { CliError, EXIT } from '../../errors';
import { formatTime } from '../../output/format';
import { cursorFlag, field, jsonFlag, limitFlag, listPage, type Row } from '../shared';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * A point in time from `--since`/`--until`: an ISO 8601 time, or a duration
 * back from now (`90s`, `15m`, `2h`, `7d`, `1w`).
 */
export const parseTimeFlag = (value: string, now: number, flag: string): string => {
  const m = /^(\d+)([smhdw])$/.exec(value.trim());
  if (m) return new Date(now - Number(m[1]) * (UNITS[m[2] as string] as number)).toISOString();
  const t = Date.parse(value);
  if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(value)) throw new CliError(`${flag} takes a time (2025-01-31T10:00:00Z) or a duration back from now (15m, 2h, 7d), not "${value}"`);
  return new Date(t).toISOString();
};

const filterFlags: FlagSpec[] = [
  { name: 'actor', short: 'a', type: 'string', valueName: 'USER', description: 'User id or username' },
  { name: 'action', type: 'string', valueName: 'ACTION', description: 'Exact action, or a prefix like auth.*' },
  { name: 'connection', short: 'c', type: 'string', valueName: 'ID', description: 'Connection id' },
  { name: 'outcome', type: 'string', valueName: 'OUTCOME', choices: ['success', 'failure', 'denied', 'allowed', 'error'], description: 'Outcome' },
  { name: 'target', type: 'string', valueName: 'ID', description: 'Target id' },
  { name: 'since', type: 'string', valueName: 'WHEN', description: 'From this time, or this long ago (15m, 2h, 7d)' },
  { name: 'until', type: 'string', valueName: 'WHEN', description: 'Up to this time, or this long ago' },
];

const filterQuery = (ctx: CommandContext, input: ParsedInput): Record<string, string | undefined> => {
  const since = input.string('since');
  const until = input.string('until');
  return {
    actor: input.string('actor'),
    action: input.string('action'),
    connection: input.string('connection'),
    outcome: input.string('outcome'),
    target: input.string('target'),
    from: since ? parseTimeFlag(since, ctx.now(), '--since') : undefined,
    to: until ? parseTimeFlag(until, ctx.now(), '--until') : undefined,
  };
};

const target = (e: Row): string => {
  const t = e.target && typeof e.target === 'object' ? (e.target as Row) : {};
  const type = field(t, 'type');
  const id = field(t, 'id');
  return type === '-' && id === '-' ? '-' : `${type}:${id}`;
};

/** Waits until `stream` can take more (backpressure), or fails if it goes away. */
const drained = (stream: NodeJS.WritableStream): Promise<void> =>
  new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      stream.removeListener('drain', onDrain);
      stream.removeListener('error', done);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = (): void => done();
    stream.once('drain', onDrain);
    stream.once('error', done);
  });

export const auditCommand: CommandSpec<CommandContext> = {
  name: 'audit',
  summary: 'Search and export the audit trail',
  subcommands: [
    {
      name: 'search',
      summary: 'Search the audit trail (newest first)',
      flags: [...filterFlags, limitFlag, cursorFlag, jsonFlag],
      examples: ['pa admin audit search --actor alice --since 1h', 'pa admin audit search --action "auth.*" --outcome failure --json'],
      run: async (ctx, input) =>
        listPage(
          ctx,
          input,
          '/audit/events',
          'matching audit events',
          [
            { header: 'time', value: (e) => (typeof e.time === 'string' ? formatTime(e.time) : '-') },
            { header: 'actor', value: (e) => (e.actor && typeof e.actor === 'object' ? field(e.actor as Row, 'name', 'id') : '-') },
            { header: 'action', value: (e) => field(e, 'action') },
            { header: 'outcome', value: (e) => field(e, 'outcome') },
            { header: 'target', value: target },
            { header: 'id', value: (e) => field(e, 'id') },
          ],
          filterQuery(ctx, input),
        ),
    },
    {
      name: 'export',
      summary: 'Export the matching audit trail as JSON Lines (streamed)',
      flags: [...filterFlags, { name: 'output', short: 'o', type: 'string', valueName: 'FILE', description: 'Write to FILE (mode 0600) instead of stdout' }],
      examples: ['pa admin audit export --since 7d -o audit.jsonl'],
      run: async (ctx, input) => {
        const res = await ctx.session().send('GET', '/audit/export', { query: filterQuery(ctx, input), headers: { accept: 'application/x-ndjson' } });
        const outPath = input.string('output');
        const fd = outPath ? openSync(outPath, 'w', 0o600) : null;
        let lines = 0;
        try {
          if (!res.body) return;
          for await (const chunk of res.body) {
            const buf = Buffer.from(chunk);
            for (const byte of buf) if (byte === 0x0a) lines += 1;
            if (fd !== null) writeSync(fd, buf);
            else if (!ctx.io.stdout.write(buf)) await drained(ctx.io.stdout);
          }
        } catch (err) {
          if (err instanceof CliError) throw err;
          throw new CliError(`the export stopped early: ${(err as Error).message}`, EXIT.UNREACHABLE, { cause: err });
        } finally {
          if (fd !== null) closeSync(fd);
        }
        if (outPath) ctx.note(`Wrote ${lines} events to ${outPath}.`);
      },
    },
  ],
};
