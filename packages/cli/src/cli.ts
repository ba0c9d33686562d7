/**
 * The `pa` command tree and its runner. Commands are thin: they parse their
 * flags, call the API or the tunnel module, and print. Every failure ends here
 * as `pa: <message>` on stderr and a documented exit code (see errors.ts).
 */
import { formatHelp, parseCommandLine, type CommandSpec, type FlagSpec } from './args/parser';
import { CommandContext, type CliDeps } from './command-context';
import { adminCommand } from './commands/admin';
import { loginCommand, logoutCommand, statusCommand } from './commands/auth';
import { connectCommand } from './commands/connect';
import { grantCommand } from './commands/grant';
import { contextCommand } from './commands/context';
import { listCommand } from './commands/list';
import { completionScript, SHELLS, type Shell } from './completion';
import { EXIT, SilentExit, describeFailure, type ExitCode } from './errors';

/** The CLI's version (printed by `pa version`). */
export const CLI_VERSION = '0.1.0';

/** Flags every command accepts. */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { name: 'context', type: 'string', valueName: 'NAME', description: 'Use this context instead of the current one (login: store the login under this name)' },
  { name: 'ca-file', type: 'string', valueName: 'FILE', description: 'Also trust the CAs in this PEM file for TLS (control plane and nodes); login: remember it for the context' },
];

const completionCommand: CommandSpec<CommandContext> = {
  name: 'completion',
  summary: 'Print a shell completion script',
  description: 'Print a completion script. bash: `source <(pa completion bash)` (or save it under /etc/bash_completion.d/); zsh: `source <(pa completion zsh)`.',
  args: [{ name: 'shell', description: 'Shell', required: true, choices: SHELLS }],
  run: async (ctx, input) => {
    ctx.out(completionScript(rootCommand, GLOBAL_FLAGS, input.requiredArg(0) as Shell));
  },
};

const versionCommand: CommandSpec<CommandContext> = {
  name: 'version',
  summary: 'Print the version of pa',
  run: async (ctx) => ctx.out(`pa ${CLI_VERSION}\n`),
};

/** The root of the command tree. */
export const rootCommand: CommandSpec<CommandContext> = {
  name: 'pa',
  summary: 'Port Authorizing: audited, policy-checked access to databases and services',
  description: [
    'pa: audited, policy-checked access to PostgreSQL, HTTP and TCP services through Port Authorizing.',
    '',
    'Get started:',
    '  pa login --server https://pa.example.com',
    '  pa list',
    '  pa connect <name>',
    '',
    'Exit codes: 0 ok, 1 error, 2 login needed, 3 permission denied or access revoked, 4 not found, 5 unreachable.',
  ].join('\n'),
  subcommands: [loginCommand, logoutCommand, statusCommand, listCommand, connectCommand, grantCommand, contextCommand, adminCommand, completionCommand, versionCommand],
};

/**
 * Runs `pa` with `argv` (without the program name) and returns the exit code.
 * Never throws; never calls process.exit.
 */
export const runCli = async (argv: readonly string[], deps: CliDeps): Promise<ExitCode> => {
  const ctx = new CommandContext(deps);
  try {
    const parsed = parseCommandLine(rootCommand, argv, GLOBAL_FLAGS);
    const override = parsed.input.string('context');
    if (override !== undefined) ctx.contextOverride = override;
    const caFile = parsed.input.string('ca-file');
    if (caFile !== undefined) ctx.caFileOverride = caFile;
    if (parsed.wantsHelp || !parsed.command.run) {
      ctx.out(formatHelp(parsed.path, GLOBAL_FLAGS));
      return EXIT.OK;
    }
    await parsed.command.run(ctx, parsed.input);
    return EXIT.OK;
  } catch (err) {
    const { message, exitCode } = describeFailure(err);
    if (!(err instanceof SilentExit) && message) deps.io.stderr.write(`pa: ${message}\n`);
    if (deps.config.debug && err instanceof Error && err.stack) deps.io.stderr.write(`${err.stack}\n`);
    return exitCode;
  }
};
