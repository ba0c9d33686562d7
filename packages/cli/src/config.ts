import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { CliError } from './errors';

/** Environment as read by {@link loadConfig}; tests pass their own. */
export type Env = Readonly<Record<string, string | undefined>>;

/** The default control plane (DESIGN.md, "Defaults"). */
export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/**
 * The CLI's own configuration, from the environment only (the per-user state —
 * contexts and tokens — lives in `config.json` in {@link Config.configDir}).
 */
export const configSchema = z.strictObject({
  /** Where `config.json` and the runtime records of `pa connect` live. */
  configDir: z.string().min(1),
  /** The control plane `pa login` uses when neither `--server` nor a context names one. */
  defaultServer: z.string().url().default(DEFAULT_SERVER),
  /** A context to use instead of the current one (like `--context`). */
  context: z.string().min(1).optional(),
  /** Print stack traces of unexpected errors. */
  debug: z.boolean().default(false),
  /** A CA file (PEM) to trust besides the built-in CAs, for every TLS connection (like `--ca-file`). */
  caFile: z.string().min(1).optional(),
});

export type Config = z.output<typeof configSchema>;

/**
 * Reads the environment (the only place in the CLI that does): `PA_CONFIG_DIR`, else `$XDG_CONFIG_HOME/port-authorizing`,
 * else `~/.config/port-authorizing`; `PA_SERVER`, `PA_CONTEXT`, `PA_DEBUG`, `PA_CA_FILE`.
 */
export const loadConfig = (env: Env = process.env): Readonly<Config> => {
  const home = env.HOME || homedir();
  const configDir = env.PA_CONFIG_DIR
    ? resolve(env.PA_CONFIG_DIR)
    : env.XDG_CONFIG_HOME
      ? join(resolve(env.XDG_CONFIG_HOME), 'port-authorizing')
      : join(home, '.config', 'port-authorizing');
  const parsed = configSchema.safeParse({
    configDir,
    ...(env.PA_SERVER ? { defaultServer: env.PA_SERVER } : {}),
    ...(env.PA_CONTEXT ? { context: env.PA_CONTEXT } : {}),
    ...(env.PA_CA_FILE ? { caFile: resolve(env.PA_CA_FILE) } : {}),
    debug: env.PA_DEBUG === '1' || env.PA_DEBUG === 'true',
  });
  if (!parsed.success) {
    const names: Record<string, string> = { configDir: 'PA_CONFIG_DIR', defaultServer: 'PA_SERVER', context: 'PA_CONTEXT' };
    const problems = parsed.error.issues.map((i) => `${names[String(i.path[0])] ?? String(i.path[0])}: ${i.message}`);
    throw new CliError(`invalid environment: ${problems.join('; ')}`);
  }
  return Object.freeze(parsed.data);
};
