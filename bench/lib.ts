/** Shared helpers of the benchmark suite: output, processes, ports, statistics. */
import { spawn, fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, openSync, closeSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';

export const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The executable `name` in `dirs`, or null. */
export const which = (name: string, dirs: readonly string[]): string | null => {
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
};

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a program to completion, killed after `timeoutMs`. Never rejects on a non-zero exit. */
export const run = async (cmd: string, args: readonly string[], timeoutMs: number, opts: { cwd?: string } = {}): Promise<RunResult> => {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  try {
    const [code] = (await once(child, 'close')) as [number | null];
    return { code, stdout, stderr, timedOut };
  } catch (err) {
    return { code: null, stdout, stderr: stderr + errText(err), timedOut };
  } finally {
    clearTimeout(timer);
  }
};

/** A long-running program (a peer proxy) with its output in `logFile`; `stop()` ends it (TERM, then KILL). */
export interface Daemon {
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export const startDaemon = (cmd: string, args: readonly string[], logFile: string): Daemon => {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.on('error', () => undefined);
  return {
    child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const closed = once(child, 'exit');
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await closed;
      clearTimeout(t);
    },
  };
};

/** A TCP port free on 127.0.0.1 right now. */
export const freePort = async (): Promise<number> => {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
};

/** Resolves once something accepts on 127.0.0.1:port; rejects after `timeoutMs` (or when `alive()` turns false). */
export const waitPort = async (port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> => {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`the process meant to listen on port ${port} exited`);
    if (Date.now() > end) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
};

/** Value at quantile `q` (0..1) of an ascending array (nearest rank). */
export const quantile = (sorted: readonly number[], q: number): number => {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
};

export const round = (n: number, digits = 2): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

export const pct = (ratio: number | null): string => (ratio === null || !Number.isFinite(ratio) ? '' : `${(ratio * 100).toFixed(0)}%`);

/** A fixed-width text table. */
export const table = (header: readonly string[], rows: readonly (readonly string[])[]): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
};

// ---------------------------------------------------------------------------
// Child processes of the bench itself (servers, data-plane node, relays), driven over IPC.

export type ChildRole = 'servers' | 'node' | 'relay' | 'connect';

export interface RpcRequest {
  id: number;
  cmd: string;
  arg: unknown;
}
export interface RpcResponse {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export interface BenchChild {
  readonly role: ChildRole;
  readonly pid: number;
  call<T>(cmd: string, arg?: unknown, timeoutMs?: number): Promise<T>;
  /** Asks the child to stop, then ends it. */
  stop(): Promise<void>;
}

/** Forks `bench/child.ts <role>` (under tsx, as this process runs) with its output appended to `logFile`. */
export const startChild = async (role: ChildRole, logFile: string, execArgv: readonly string[] = []): Promise<BenchChild> => {
  const fd = openSync(logFile, 'a');
  const child = fork(join(__dirname, 'child.ts'), [role], { stdio: ['ignore', fd, fd, 'ipc'], execArgv: [...process.execArgv, ...execArgv] });
  closeSync(fd);
  let next = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (m: RpcResponse) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(m.error ?? `${role} child failed`));
  });
  child.on('exit', (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`${role} child exited (${code ?? signal}); see ${logFile}`));
    pending.clear();
  });
  const call = <T>(cmd: string, arg: unknown = null, timeoutMs = 60_000): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null || !child.connected) {
        reject(new Error(`${role} child is not running; see ${logFile}`));
        return;
      }
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${role} child: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      child.send({ id, cmd, arg } satisfies RpcRequest);
    });
  await call('ping', null, 30_000);
  return {
    role,
    pid: child.pid ?? 0,
    call,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      await call('stop', null, 15_000).catch(() => undefined);
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      if (child.connected) child.disconnect();
      await exited;
      clearTimeout(t);
    },
  };
};

// ---------------------------------------------------------------------------
// What each step hands back to run.ts.

export interface Goal {
  name: string;
  target: string;
  measured: string;
  /** null: could not be judged (a row is missing). */
  met: boolean | null;
}

export interface StepResult {
  step: string;
  title: string;
  /** The table printed in the summary. */
  table: string;
  /** The same figures, for the JSON file. */
  rows: Record<string, unknown>[];
  notes: string[];
  goals: Goal[];
  seconds?: number;
  /** CPUs busy with other work in the idle second before the step (null off Linux). */
  foreignCpusBefore?: number | null;
  /** p50 ms of append + fdatasync in the temp directory just before the step. */
  fsyncP50msBefore?: number;
}

/** Shared by the steps: the log directory and the backends' ports. */
export interface BenchContext {
  logDir: string;
  servers: { sink: number; source: number; echo: number; http: number };
}
