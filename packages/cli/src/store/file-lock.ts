import { closeSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError } from '../errors';
import { ensurePrivateDir } from './atomic-file';
import { dirname } from 'node:path';

export interface FileLockOptions {
  /** Give up after this long (default 45 s: longer than a holder's slowest HTTP call). */
  timeoutMs?: number;
  /** A lock older than this is taken to be left behind (default 60 s); a dead holder's lock is taken at once. */
  staleMs?: number;
  /** Whether a process id is alive (replaceable in tests). */
  isAlive?: (pid: number) => boolean;
}

/** Whether the process `pid` exists (signal 0 checks without sending anything). */
export const isProcessAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const holderOf = (path: string): number | null => {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
};

/**
 * Runs `fn` while holding an exclusive lock file (created with O_EXCL, holding
 * our pid). Several `pa` processes share one config file; the refresh token
 * rotates on every use, so two processes must never spend the same one: the
 * second would trip the server's reuse detection and end the session.
 */
export const withFileLock = async <T>(path: string, fn: () => Promise<T>, options: FileLockOptions = {}): Promise<T> => {
  const timeoutMs = options.timeoutMs ?? 45_000;
  const staleMs = options.staleMs ?? 60_000;
  const isAlive = options.isAlive ?? isProcessAlive;
  const deadline = Date.now() + timeoutMs;
  ensurePrivateDir(dirname(path));
  for (let attempt = 0; ; attempt += 1) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = holderOf(path);
      let age = 0;
      try {
        age = Date.now() - statSync(path).mtimeMs;
      } catch {
        continue; // released meanwhile: try again at once
      }
      if ((holder !== null && holder !== process.pid && !isAlive(holder)) || age > staleMs) {
        rmSync(path, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new CliError(`another pa process holds ${path}; if none is running, delete that file`);
      }
      await sleep(Math.min(20 * 2 ** Math.min(attempt, 4), 200));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
};
