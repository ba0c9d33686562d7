/**
 * A small command-line parser for a tree of subcommands: `--flag value`,
 * `--flag=value`, `-f value`, `-fvalue`, boolean `--json`, repeatable list
 * flags (`--tag a=b --tag c=d`), positional arguments, `--` to end flags, and
 * `-h`/`--help` anywhere. Flags are looked up on the command reached so far plus
 * the global flags, so `pa --context prod list` and `pa list --context prod`
 * both work. Every mistake is a {@link UsageError} that names the command and
 * suggests the closest valid spelling.
 */
import { UsageError } from '../errors';

/** How a flag's value is read. `list` flags may repeat; `boolean` flags take no value. */
export type FlagType = 'string' | 'number' | 'boolean' | 'list';

export interface FlagSpec {
  /** Long name, without the dashes. */
  name: string;
  /** One-letter short name, without the dash. */
  short?: string;
  type: FlagType;
  description: string;
  /** Placeholder in help, e.g. `N`, `URL`. */
  valueName?: string;
  /** Allowed values (checked for string and list flags). */
  choices?: readonly string[];
}

export interface ArgSpec {
  name: string;
  description: string;
  required?: boolean;
  /** Takes every remaining positional argument. */
  variadic?: boolean;
  choices?: readonly string[];
}

/** One command in the tree; a leaf has `run`, a group has `subcommands`. */
export interface CommandSpec<TContext> {
  name: string;
  aliases?: readonly string[];
  summary: string;
  /** Longer text for `--help`. */
  description?: string;
  args?: readonly ArgSpec[];
  flags?: readonly FlagSpec[];
  examples?: readonly string[];
  subcommands?: readonly CommandSpec<TContext>[];
  run?: (ctx: TContext, input: ParsedInput) => Promise<void>;
}

type FlagValue = string | number | boolean | string[];

/** The arguments and flags given to one command, with typed accessors. */
export class ParsedInput {
  constructor(
    readonly args: readonly string[],
    private readonly values: ReadonlyMap<string, FlagValue>,
    /** The command path, e.g. `admin users create`. */
    readonly commandPath: string,
  ) {}

  /** Positional argument `index`, if given. */
  arg(index: number): string | undefined {
    return this.args[index];
  }

  /** Positional argument `index`; the parser has already checked required ones. */
  requiredArg(index: number): string {
    const v = this.args[index];
    if (v === undefined) throw new UsageError(`missing argument ${index + 1}`, this.commandPath);
    return v;
  }

  string(name: string): string | undefined {
    const v = this.values.get(name);
    return typeof v === 'string' ? v : undefined;
  }

  number(name: string): number | undefined {
    const v = this.values.get(name);
    return typeof v === 'number' ? v : undefined;
  }

  boolean(name: string): boolean {
    return this.values.get(name) === true;
  }

  list(name: string): string[] {
    const v = this.values.get(name);
    return Array.isArray(v) ? [...v] : [];
  }

  /** Whether the flag was given at all. */
  has(name: string): boolean {
    return this.values.has(name);
  }

  /** A usage error for this command. */
  usageError(message: string): UsageError {
    return new UsageError(message, this.commandPath);
  }
}

/** What {@link parseCommandLine} found. */
export interface ParseResult<TContext> {
  /** Root first, the chosen command last. */
  path: readonly CommandSpec<TContext>[];
  command: CommandSpec<TContext>;
  input: ParsedInput;
  /** `-h`/`--help` was given, or a group was named without a subcommand. */
  wantsHelp: boolean;
}

/** Edit distance between two words, a swap of neighbours counting as one edit (for "did you mean"). */
export const editDistance = (a: string, b: string): number => {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = Array.from({ length: rows * cols }, (_, k) => (k < cols ? k : k % cols === 0 ? k / cols : 0));
  const at = (i: number, j: number): number => d[i * cols + j] as number;
  for (let i = 1; i < rows; i += 1) {
    for (let j = 1; j < cols; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i * cols + j] = v;
    }
  }
  return at(a.length, b.length);
};

/** The closest candidate to `word`, if any is close enough to be a likely typo. */
export const closest = (word: string, candidates: readonly string[]): string | undefined => {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 2 ? 1 : editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
};

const didYouMean = (word: string, candidates: readonly string[], prefix = ''): string => {
  const c = closest(word, candidates);
  return c ? ` (did you mean ${prefix}${c}?)` : '';
};

const pathOf = <T>(path: readonly CommandSpec<T>[]): string =>
  path
    .slice(1)
    .map((c) => c.name)
    .join(' ');

const findSub = <T>(cmd: CommandSpec<T>, word: string): CommandSpec<T> | undefined =>
  cmd.subcommands?.find((s) => s.name === word || (s.aliases ?? []).includes(word));

/**
 * Parses `argv` (without the program name) against the command tree. Global
 * flags are accepted at every level and reported with the leaf's flags.
 */
export const parseCommandLine = <T>(root: CommandSpec<T>, argv: readonly string[], globalFlags: readonly FlagSpec[]): ParseResult<T> => {
  const path: CommandSpec<T>[] = [root];
  const positionals: string[] = [];
  const values = new Map<string, FlagValue>();
  let wantsHelp = false;
  let flagsEnded = false;
  const current = (): CommandSpec<T> => path[path.length - 1] as CommandSpec<T>;
  const knownFlags = (): FlagSpec[] => [...(current().flags ?? []), ...globalFlags];
  const fail = (message: string): never => {
    throw new UsageError(message, pathOf(path));
  };

  const setFlag = (flag: FlagSpec, raw: string | undefined, shown: string): void => {
    if (flag.type === 'boolean') {
      if (raw === undefined || raw === 'true') values.set(flag.name, true);
      else if (raw === 'false') values.delete(flag.name);
      else fail(`${shown} takes no value`);
      return;
    }
    if (raw === undefined) return fail(`${shown} needs a value${flag.valueName ? ` (${flag.valueName})` : ''}`);
    if (flag.choices && !flag.choices.includes(raw)) fail(`${shown} must be one of: ${flag.choices.join(', ')}${didYouMean(raw, flag.choices)}`);
    if (flag.type === 'number') {
      if (!/^-?\d+$/.test(raw)) fail(`${shown} must be a whole number, not "${raw}"`);
      values.set(flag.name, Number(raw));
    } else if (flag.type === 'list') {
      const prev = values.get(flag.name);
      values.set(flag.name, [...(Array.isArray(prev) ? prev : []), raw]);
    } else {
      if (values.has(flag.name)) fail(`${shown} was given more than once`);
      values.set(flag.name, raw);
    }
  };

  for (let i = 0; i < argv.length; i += 1) {
    const token = argv[i] as string;
    const next = (): string | undefined => {
      if (i + 1 >= argv.length) return undefined;
      i += 1;
      return argv[i];
    };
    if (!flagsEnded && token === '--') {
      flagsEnded = true;
      continue;
    }
    if (!flagsEnded && token.startsWith('--') && token.length > 2) {
      const eq = token.indexOf('=');
      const name = eq === -1 ? token.slice(2) : token.slice(2, eq);
      const inline = eq === -1 ? undefined : token.slice(eq + 1);
      if (name === 'help') {
        wantsHelp = true;
        continue;
      }
      const flag = knownFlags().find((f) => f.name === name);
      if (!flag) {
        fail(`unknown flag --${name}${didYouMean(name, knownFlags().map((f) => f.name), '--')}`);
        continue;
      }
      setFlag(flag, flag.type === 'boolean' ? inline : (inline ?? next()), `--${name}`);
      continue;
    }
    if (!flagsEnded && token.startsWith('-') && token.length > 1 && !/^-\d/.test(token)) {
      const letter = token[1] as string;
      if (letter === 'h' && token.length === 2) {
        wantsHelp = true;
        continue;
      }
      const flag = knownFlags().find((f) => f.short === letter);
      if (!flag) {
        fail(`unknown flag -${letter}`);
        continue;
      }
      const attached = token.length > 2 ? token.slice(2) : undefined;
      if (flag.type === 'boolean') {
        if (attached !== undefined) fail(`-${letter} takes no value`);
        setFlag(flag, undefined, `-${letter}`);
      } else {
        setFlag(flag, attached ?? next(), `-${letter}`);
      }
      continue;
    }
    const cmd = current();
    if (cmd.subcommands?.length && positionals.length === 0) {
      const sub = findSub(cmd, token);
      if (sub) {
        path.push(sub);
        continue;
      }
      if (!cmd.run) {
        const names = cmd.subcommands.flatMap((s) => [s.name, ...(s.aliases ?? [])]);
        fail(`unknown command "${token}"${didYouMean(token, names)}`);
      }
    }
    positionals.push(token);
  }

  const command = current();
  const commandPath = pathOf(path);
  if (!command.run) wantsHelp = true;
  if (!wantsHelp) {
    const specs = command.args ?? [];
    const required = specs.filter((a) => a.required).length;
    if (positionals.length < required) {
      const missing = specs.filter((a) => a.required).slice(positionals.length);
      fail(`missing ${missing.map((a) => `<${a.name}>`).join(' ')}`);
    }
    const variadic = specs.some((a) => a.variadic);
    if (!variadic && positionals.length > specs.length) fail(`unexpected argument "${positionals[specs.length] as string}"`);
    specs.forEach((spec, index) => {
      const v = positionals[index];
      if (v !== undefined && spec.choices && !spec.choices.includes(v)) {
        fail(`<${spec.name}> must be one of: ${spec.choices.join(', ')}${didYouMean(v, spec.choices)}`);
      }
    });
  }
  return { path, command, input: new ParsedInput(positionals, values, commandPath), wantsHelp };
};

const flagLabel = (f: FlagSpec): string => {
  const short = f.short ? `-${f.short}, ` : '    ';
  const value = f.type === 'boolean' ? '' : ` ${f.valueName ?? f.name.toUpperCase()}`;
  return `${short}--${f.name}${value}`;
};

const columns = (rows: readonly (readonly [string, string])[]): string[] => {
  const width = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `  ${a.padEnd(width)}  ${b}`);
};

/** The `--help` text of the last command in `path`. */
export const formatHelp = <T>(path: readonly CommandSpec<T>[], globalFlags: readonly FlagSpec[]): string => {
  const cmd = path[path.length - 1] as CommandSpec<T>;
  const name = ['pa', ...path.slice(1).map((c) => c.name)].join(' ');
  const lines: string[] = [];
  if (cmd.subcommands?.length && !cmd.run) {
    lines.push(`Usage: ${name} <command> [flags]`, '');
  } else {
    const args = (cmd.args ?? []).map((a) => {
      const inner = `${a.name}${a.variadic ? '...' : ''}`;
      return a.required ? `<${inner}>` : `[${inner}]`;
    });
    lines.push(`Usage: ${[name, ...args].join(' ')}${cmd.flags?.length ? ' [flags]' : ''}`, '');
  }
  lines.push(cmd.description ?? cmd.summary, '');
  if (cmd.subcommands?.length) {
    lines.push('Commands:', ...columns(cmd.subcommands.map((s) => [[s.name, ...(s.aliases ?? [])].join(', '), s.summary])), '');
  }
  if (cmd.args?.length) {
    lines.push('Arguments:', ...columns(cmd.args.map((a) => [a.name, a.choices ? `${a.description} (${a.choices.join('|')})` : a.description])), '');
  }
  if (cmd.flags?.length) {
    lines.push('Flags:', ...columns(cmd.flags.map((f) => [flagLabel(f), f.choices ? `${f.description} (${f.choices.join('|')})` : f.description])), '');
  }
  lines.push('Global flags:', ...columns([...globalFlags.map((f): [string, string] => [flagLabel(f), f.description]), ['-h, --help', 'Show help for a command']]), '');
  if (cmd.examples?.length) lines.push('Examples:', ...cmd.examples.map((e) => `  ${e}`), '');
  if (cmd.subcommands?.length) lines.push(`Run \`${name} <command> --help\` for more about a command.`);
  return `${lines.join('\n').trimEnd()}\n`;
};
