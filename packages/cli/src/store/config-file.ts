import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { CliError, EXIT } from '../errors';
import { writeFileAtomic } from './atomic-file';
import { withFileLock } from './file-lock';

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'an ISO 8601 time');

/** One control plane and who is logged in to it (kubectl-style context). */
export const contextSchema = z.object({
  /** Base URL of the control plane's REST API, e.g. `http://127.0.0.1:8080`. */
  server: z.string().url(),
  user: z.object({ id: z.string(), username: z.string() }).optional(),
  accessToken: z.string().min(1).optional(),
  accessTokenExpiresAt: isoTime.optional(),
  refreshToken: z.string().min(1).optional(),
  refreshTokenExpiresAt: isoTime.optional(),
  sessionId: z.string().optional(),
  /** A CA file (absolute path) to trust for this control plane and its nodes (`pa login --ca-file`). */
  caFile: z.string().min(1).optional(),
});

export type Context = z.infer<typeof contextSchema>;

/** The whole `config.json`. */
export const configFileSchema = z.object({
  currentContext: z.string().nullable().default(null),
  contexts: z.record(z.string(), contextSchema).default({}),
});

export type ConfigFile = z.infer<typeof configFileSchema>;

/** A context name: something a shell and a file can both carry without quoting surprises. */
export const contextNameSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.@:-]*$/, 'letters, digits and _ . @ : -, starting with a letter or digit');

const emptyConfig = (): ConfigFile => ({ currentContext: null, contexts: {} });

/**
 * Reads and writes `config.json` in the config directory (mode 0600, directory
 * 0700, atomic replace). Writers that read-modify-write go through
 * {@link ConfigStore.update}, which holds a lock so two `pa` processes cannot
 * lose each other's changes or spend the same refresh token.
 */
export class ConfigStore {
  readonly path: string;
  readonly lockPath: string;

  constructor(readonly dir: string) {
    this.path = join(dir, 'config.json');
    this.lockPath = join(dir, 'config.lock');
  }

  /** The config as stored; an absent file is an empty config. A corrupt one is an error that says what to do. */
  read(): ConfigFile {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyConfig();
      throw new CliError(`cannot read ${this.path}: ${(err as Error).message}`, EXIT.ERROR, { cause: err });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw this.corrupt('it is not valid JSON', err);
    }
    const parsed = configFileSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? issue.path.join('.') : '(top level)';
      throw this.corrupt(`${where}: ${issue?.message ?? 'invalid'}`, parsed.error);
    }
    return parsed.data;
  }

  /** Replaces the file atomically. */
  write(config: ConfigFile): void {
    writeFileAtomic(this.path, `${JSON.stringify(config, null, 2)}\n`);
  }

  /** Read-modify-write under the config lock; returns what `fn` returns. */
  async update<T>(fn: (config: ConfigFile) => T | Promise<T>): Promise<T> {
    return withFileLock(this.lockPath, async () => {
      const config = this.read();
      const result = await fn(config);
      this.write(config);
      return result;
    });
  }

  /** Runs `fn` under the config lock without writing (fn may call {@link write}). */
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    return withFileLock(this.lockPath, fn);
  }

  private corrupt(reason: string, cause: unknown): CliError {
    return new CliError(
      `the config file ${this.path} is not valid (${reason}).\nFix it by hand, or move it away and run \`pa login\` again.`,
      EXIT.ERROR,
      { cause },
    );
  }
}
