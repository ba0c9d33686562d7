import { UsageError } from '../errors';
import { closest, editDistance, formatHelp, parseCommandLine, type CommandSpec, type FlagSpec } from './parser';

const run = async (): Promise<void> => {};
const globals: FlagSpec[] = [{ name: 'context', type: 'string', description: 'context' }];
const root: CommandSpec<null> = {
  name: 'pa',
  summary: 'root',
  subcommands: [
    {
      name: 'connect',
      summary: 'connect',
      args: [{ name: 'name', description: 'n', required: true }],
      flags: [
        { name: 'port', short: 'p', type: 'number', description: 'port' },
        { name: 'json', type: 'boolean', description: 'json' },
        { name: 'tag', short: 't', type: 'list', description: 'tags' },
        { name: 'mode', type: 'string', choices: ['a', 'b'], description: 'mode' },
      ],
      run,
    },
    {
      name: 'admin',
      summary: 'admin',
      subcommands: [{ name: 'users', aliases: ['u'], summary: 'users', subcommands: [{ name: 'list', aliases: ['ls'], summary: 'list', run }] }],
    },
    { name: 'settings', summary: 's', args: [{ name: 'kv', description: 'kv', required: true, variadic: true }], run },
  ],
};

const parse = (argv: string[]) => parseCommandLine(root, argv, globals);
const usage = (argv: string[]): string => {
  try {
    parse(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('expected a usage error');
};

describe('parseCommandLine', () => {
  it.each([
    [['connect', 'db', '--port', '5432']],
    [['connect', 'db', '--port=5432']],
    [['connect', '-p', '5432', 'db']],
    [['connect', '-p5432', 'db']],
    [['--context', 'prod', 'connect', 'db', '-p', '5432']],
  ])('reads flags in every spelling: %j', (argv) => {
    const r = parse(argv);
    expect(r.command.name).toBe('connect');
    expect(r.input.args).toEqual(['db']);
    expect(r.input.number('port')).toBe(5432);
  });

  it('reads booleans, repeatable lists, global flags and `--`', () => {
    const r = parse(['connect', '--json', '-t', 'a=1', '--tag', 'b=2', '--context', 'x', '--', '-weird-name']);
    expect(r.input.boolean('json')).toBe(true);
    expect(r.input.list('tag')).toEqual(['a=1', 'b=2']);
    expect(r.input.string('context')).toBe('x');
    expect(r.input.args).toEqual(['-weird-name']);
  });

  it('descends through groups and aliases', () => {
    const r = parse(['admin', 'u', 'ls']);
    expect(r.path.map((c) => c.name)).toEqual(['pa', 'admin', 'users', 'list']);
    expect(r.input.commandPath).toBe('admin users list');
  });

  it('asks for help on -h/--help anywhere, and for a group without a subcommand', () => {
    expect(parse(['connect', '--help']).wantsHelp).toBe(true);
    expect(parse(['-h', 'connect']).wantsHelp).toBe(true);
    expect(parse(['admin']).wantsHelp).toBe(true);
    // A required argument is not demanded when help is asked for.
    expect(parse(['connect', '-h']).wantsHelp).toBe(true);
  });

  it('takes every remaining argument for a variadic one', () => {
    expect(parse(['settings', 'a=1', 'b=2']).input.args).toEqual(['a=1', 'b=2']);
  });

  it.each([
    [['lsit'], 'unknown command "lsit"'],
    [['admin', 'usres'], 'unknown command "usres" (did you mean users?)'],
    [['connect', 'db', '--prot', '1'], 'unknown flag --prot (did you mean --port?)'],
    [['connect', 'db', '--port'], '--port needs a value'],
    [['connect', 'db', '--port', 'abc'], '--port must be a whole number'],
    [['connect', 'db', '--json=yes'], '--json takes no value'],
    [['connect', 'db', '--mode', 'c'], '--mode must be one of: a, b'],
    [['connect'], 'missing <name>'],
    [['connect', 'a', 'b'], 'unexpected argument "b"'],
    [['connect', 'a', '-x'], 'unknown flag -x'],
  ])('reports %j as a usage error', (argv, message) => {
    const text = usage(argv);
    expect(text).toContain(message);
    expect(text).toMatch(/See `pa .*--help`\./);
  });
});

describe('suggestions', () => {
  it('counts a swap of neighbours as one edit', () => {
    expect(editDistance('lsit', 'list')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });
  it('suggests only close words', () => {
    expect(closest('lsit', ['list', 'login'])).toBe('list');
    expect(closest('conect', ['connect', 'context'])).toBe('connect');
    expect(closest('zzz', ['list', 'login'])).toBeUndefined();
  });
});

describe('formatHelp', () => {
  it('shows usage, arguments, flags with placeholders and the global flags', () => {
    const r = parse(['connect', '--help']);
    const help = formatHelp(r.path, globals);
    expect(help).toContain('Usage: pa connect <name> [flags]');
    expect(help).toMatch(/-p, --port PORT\s+port/);
    expect(help).toMatch(/--mode MODE\s+mode \(a\|b\)/);
    expect(help).toContain('Global flags:');
  });
  it('lists the subcommands of a group', () => {
    const help = formatHelp(parse(['admin']).path, globals);
    expect(help).toContain('Usage: pa admin <command>');
    expect(help).toMatch(/users, u\s+users/);
  });
});
