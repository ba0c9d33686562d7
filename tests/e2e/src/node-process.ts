import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { resolve } from 'node:path';

/** The repository root: the child runs from here so `--import tsx` resolves. */
const ROOT = resolve(__dirname, '../../..');
/** The data-plane node's real entry point, as `pnpm exec tsx services/data-plane/src/main.ts` runs it. */
export const NODE_MAIN = resolve(ROOT, 'services/data-plane/src/main.ts');

/**
 * A data-plane node running as its own OS process: the real `main.ts`,
 * configured only through the environment (as a deployment does), so it can
 * be killed with SIGKILL — no drain, no flush, sockets closed by the kernel.
 * Started with `node --import tsx`, so the pid is the node itself, not a
 * wrapper whose child would outlive a kill.
 */
export class NodeProcess {
  private out = '';
  private err = '';
  /** Resolves when the process has exited: its code, or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  tunnelUrl = '';
  adminUrl = '';

  private constructor(
    readonly nodeId: string,
    readonly child: ChildProcessWithoutNullStreams,
  ) {
    child.stdout.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (this.err += d.toString()));
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  }

  /**
   * Starts the node with `env` as its whole environment (plus PATH) and waits
   * for its "Data-plane node listening." log line, which names its tunnel and
   * admin URLs (ports are chosen by the OS).
   */
  static async start(nodeId: string, env: Record<string, string>, timeoutMs = 30_000): Promise<NodeProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', NODE_MAIN], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env, PA_NODE_ID: nodeId },
      stdio: 'pipe',
    });
    const node = new NodeProcess(nodeId, child);
    try {
      const line = await node.waitForLog((r) => r.message === 'Data-plane node listening.', timeoutMs);
      node.tunnelUrl = String(line.tunnelUrl);
      node.adminUrl = String(line.admin);
    } catch (err) {
      await node.kill('SIGKILL');
      throw err;
    }
    return node;
  }

  /** The node's JSON log records so far. */
  logs(): Array<Record<string, unknown>> {
    const records: Array<Record<string, unknown>> = [];
    for (const line of this.out.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        records.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line still being written
      }
    }
    return records;
  }

  /** Resolves with the first log record matching `match` (rejects if the process exits or `timeoutMs` passes first). */
  waitForLog(match: (record: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return new Promise((resolveLine, reject) => {
      const check = (): boolean => {
        const hit = this.logs().find(match);
        if (hit === undefined) return false;
        done();
        resolveLine(hit);
        return true;
      };
      const onExit = (): void => {
        if (check()) return;
        done();
        reject(new Error(`data-plane node ${this.nodeId} exited before the expected log line.\nstdout: ${this.out.slice(-4000)}\nstderr: ${this.err.slice(-4000)}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`data-plane node ${this.nodeId}: no expected log line within ${timeoutMs} ms.\nstdout: ${this.out.slice(-4000)}\nstderr: ${this.err.slice(-4000)}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.child.stdout.off('data', check);
        this.child.off('exit', onExit);
      };
      this.child.stdout.on('data', check);
      this.child.once('exit', onExit);
      if (this.child.exitCode !== null || this.child.signalCode !== null) onExit();
      else check();
    });
  }

  /** A metric of the node's admin `/metrics` (Prometheus text), or null when absent. */
  async metric(name: string): Promise<number | null> {
    const text = await (await fetch(`${this.adminUrl}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? null : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  /** Sends `signal` (SIGKILL by default) and waits for the process to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}
