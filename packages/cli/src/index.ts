/**
 * `@pa/cli`: the `pa` command. Hosts (tests, end-to-end suites) run it in
 * process with {@link runCli} and their own streams and config.
 */
export { runCli, rootCommand, GLOBAL_FLAGS, CLI_VERSION } from './cli';
export { loadConfig, type Config } from './config';
export { EXIT, CliError, type ExitCode } from './errors';
export type { CliDeps, CliIo } from './command-context';
