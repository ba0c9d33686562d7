/**
 * Runs the real `pa` (bin/pa → tsx → src/main.ts) as a child process with its
 * own config directory, as a user would, for the CLI's tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { applyTokenPair, tokenPairSchema } from '../api/auth-session';
import { ConfigStore, type Context } from '../store/config-file';

/** The `pa` executable of this package. */
export const PA_BIN = resolve(__dirname, '..', '..', 'bin', 'pa');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A temporary config directory (PA_CONFIG_DIR) and a cleanup. */
export const makeConfigDir = (): { dir: string; cleanup: () => void } => {
  const base = mkdtempSync(join(tmpdir(), 'pa-cli-test-'));
  const dir = join(base, 'config');
  return { dir, cleanup: () => rmSync(base, { recursive: true, force: true }) };
};

/** The environment a test CLI runs with: nothing from the developer's own shell leaks in. */
export const cliEnv = (configDir: string, extra: Record<string, string> = {}): Record<string, string> => ({
  PATH: '/usr/local/bin:/usr/bin:/bin',
  HOME: resolve(configDir, '..'),
  PA_CONFIG_DIR: configDir,
  ...extra,
});

/** A running `pa` process with its output so far. */
export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout (or stderr) matches, with the match; rejects on exit or timeout. */
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr', timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<CliResult>;
}

/** Starts `pa args…`; `input` is written to stdin and stdin is closed (unless `keepStdinOpen`). */
export const startCli = (args: readonly string[], options: { configDir: string; input?: string; env?: Record<string, string>; keepStdinOpen?: boolean }): CliProcess => {
  const child = spawn(process.execPath, [PA_BIN, ...args], { env: cliEnv(options.configDir, options.env), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const poke = (): void => {
    for (const w of [...waiters]) w();
  };
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
    poke();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString('utf8');
    poke();
  });
  if (options.input !== undefined) child.stdin?.write(options.input);
  if (!options.keepStdinOpen) child.stdin?.end();
  const exited = new Promise<CliResult>((resolvePromise) => {
    child.on('close', (code, signal) => {
      poke();
      resolvePromise({ code, signal, stdout: out, stderr: err });
    });
  });
  let done = false;
  void exited.then(() => {
    done = true;
    poke();
  });
  const waitFor = (pattern: RegExp, stream: 'stdout' | 'stderr' = 'stdout', timeoutMs = 20_000): Promise<RegExpMatchArray> =>
    new Promise((resolvePromise, reject) => {
      const check = (): void => {
        const m = (stream === 'stdout' ? out : err).match(pattern);
        if (m) {
          cleanup();
          resolvePromise(m);
        } else if (done) {
          cleanup();
          reject(new Error(`pa exited before ${stream} matched ${pattern}\nstdout: ${out}\nstderr: ${err}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${stream} to match ${pattern}\nstdout: ${out}\nstderr: ${err}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return { child, stdout: () => out, stderr: () => err, waitFor, exited };
};

/** Runs `pa args…` to completion. */
export const runPa = (args: readonly string[], options: { configDir: string; input?: string; env?: Record<string, string> }): Promise<CliResult> =>
  startCli(args, options).exited;

/**
 * Logs `username` in to the control plane at `server` over HTTP and stores the
 * context the way `pa login` does, without starting a process (for tests whose
 * subject is another command).
 */
export const seedLogin = async (configDir: string, server: string, username = 'alice', password = 'alice-password-1'): Promise<string> => {
  const res = await fetch(`${server}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  if (!res.ok) throw new Error(`seed login failed: ${res.status}`);
  const pair = tokenPairSchema.extend({ user: z.object({ id: z.string(), username: z.string() }) }).parse(await res.json());
  const name = `${username}@${new URL(server).host}`;
  await new ConfigStore(configDir).update((config) => {
    const context: Context = { server, user: { id: pair.user.id, username: pair.user.username } };
    applyTokenPair(context, pair, Date.now());
    config.contexts[name] = context;
    config.currentContext = name;
  });
  return name;
};
