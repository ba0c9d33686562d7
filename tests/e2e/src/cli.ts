import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The real `pa` binary, run as a user would (its own config directory). */
export const PA_BIN = resolve(__dirname, '../../../packages/cli/bin/pa');

export interface PaProcess {
  child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `re` in stdout (or stderr). */
  waitFor(re: RegExp, stream?: 'stdout' | 'stderr', ms?: number): Promise<RegExpMatchArray>;
  exited: Promise<number>;
}

export class PaUser {
  readonly dir = mkdtempSync(join(tmpdir(), 'pa-cli-'));

  start(args: string[], input?: string, env: Record<string, string> = {}): PaProcess {
    const child = spawn(process.execPath, [PA_BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: this.dir, PA_CONFIG_DIR: this.dir, NO_COLOR: '1', ...env },
      stdio: 'pipe',
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    if (input !== undefined) child.stdin.end(input);
    const exited = new Promise<number>((r) => child.on('exit', (code, signal) => r(code ?? (signal ? 128 : 0))));
    return {
      child,
      stdout: () => out,
      stderr: () => err,
      exited,
      waitFor: (re, stream = 'stdout', ms = 60_000) =>
        new Promise((resolveMatch, reject) => {
          const check = () => {
            const m = (stream === 'stdout' ? out : err).match(re);
            if (m) {
              clearTimeout(timer);
              child.stdout.off('data', check);
              child.stderr.off('data', check);
              resolveMatch(m);
            }
          };
          const timer = setTimeout(() => reject(new Error(`pa ${args.join(' ')}: no ${re} in ${stream} within ${ms} ms.\nstdout: ${out}\nstderr: ${err}`)), ms);
          child.stdout.on('data', check);
          child.stderr.on('data', check);
          void exited.then(() => setImmediate(check));
          check();
        }),
    };
  }

  async run(args: string[], input?: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const p = this.start(args, input, env);
    const code = await p.exited;
    return { code, stdout: p.stdout(), stderr: p.stderr() };
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
