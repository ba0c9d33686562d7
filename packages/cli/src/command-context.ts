import { resolve } from 'node:path';
import { AuthSession } from './api/auth-session';
import { RestClient } from './api/rest-client';
import { Trust } from './api/trust';
import type { Config } from './config';
import { CliError, EXIT } from './errors';
import type { InputStream } from './prompt';
import { ConfigStore, type Context } from './store/config-file';
import { isProcessAlive } from './store/file-lock';
import { RuntimeRegistry } from './store/runtime-registry';

/** The process's streams, injected so tests (and other hosts) can supply their own. */
export interface CliIo {
  stdin: InputStream;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** Everything the CLI takes from its host process. */
export interface CliDeps {
  config: Readonly<Config>;
  io: CliIo;
  now?: () => number;
  /** The process id `pa connect` records for `pa status`. */
  pid?: number;
  /** Aborted on SIGINT/SIGTERM: long-running commands close cleanly. */
  shutdown?: AbortSignal;
  isAlive?: (pid: number) => boolean;
}

/**
 * What a command gets: the streams, the config store, the runtime registry,
 * and the logged-in session of the selected context.
 */
export class CommandContext {
  readonly io: CliIo;
  readonly config: Readonly<Config>;
  readonly store: ConfigStore;
  readonly registry: RuntimeRegistry;
  readonly now: () => number;
  readonly pid: number;
  readonly shutdown: AbortSignal;
  /** `--context NAME`, if given. */
  contextOverride: string | undefined;
  /** `--ca-file FILE`, if given. */
  caFileOverride: string | undefined;

  constructor(deps: CliDeps) {
    this.io = deps.io;
    this.config = deps.config;
    this.store = new ConfigStore(deps.config.configDir);
    this.registry = new RuntimeRegistry(deps.config.configDir, deps.isAlive ?? isProcessAlive);
    this.now = deps.now ?? Date.now;
    this.pid = deps.pid ?? process.pid;
    this.shutdown = deps.shutdown ?? new AbortController().signal;
    this.contextOverride = deps.config.context;
  }

  /** Writes to stdout. */
  out(text: string): void {
    this.io.stdout.write(text);
  }

  /** Writes a line to stderr (progress, warnings, events). */
  note(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  /** The name of the context commands act on (`--context`, PA_CONTEXT, else the current one). */
  contextName(): string | null {
    return this.contextOverride ?? this.store.read().currentContext;
  }

  /** The selected context, or an error that says how to get one. */
  requireContext(): { name: string; context: Context } {
    const config = this.store.read();
    const name = this.contextOverride ?? config.currentContext;
    if (!name) throw new CliError('not logged in: run `pa login --server URL`', EXIT.NEEDS_LOGIN);
    const context = config.contexts[name];
    if (!context) {
      throw new CliError(`there is no context named "${name}": see \`pa context list\`, or run \`pa login --context ${name} --server URL\``, EXIT.NEEDS_LOGIN);
    }
    return { name, context };
  }

  /** The absolute path of the CA file `--ca-file` names, if given. */
  caFileFlag(): string | undefined {
    return this.caFileOverride ? resolve(this.caFileOverride) : undefined;
  }

  /**
   * The CAs to trust: the built-in ones plus one CA file, taken from
   * `--ca-file`, else PA_CA_FILE, else the context's (`pa login --ca-file`).
   */
  trust(contextCaFile?: string): Trust {
    const flag = this.caFileFlag();
    if (flag) return Trust.fromFile(flag, '--ca-file');
    if (this.config.caFile) return Trust.fromFile(this.config.caFile, 'PA_CA_FILE');
    if (contextCaFile) return Trust.fromFile(contextCaFile, 'context');
    return Trust.system();
  }

  /** The logged-in session of the selected context (tokens refreshed as needed). */
  session(): AuthSession {
    const { name, context } = this.requireContext();
    const trust = this.trust(context.caFile);
    return new AuthSession(this.store, name, context, this.now, new RestClient(context.server, { fetch: trust.fetch }), trust);
  }
}
