import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { PortableAnalyzeSqlOptions, SqlAnalysis } from './parse';
import type { ParseRequest } from './parse-worker';

/** Options of {@link createSqlParserPool}. */
export interface SqlParserPoolOptions {
  /** Worker threads (default 2). */
  readonly size?: number;
  /**
   * Time budget per query, from the moment a worker takes it to its result
   * (default 2000 ms). A worker still parsing when it runs out is terminated
   * and replaced. Waiting in the queue is bounded by `maxQueue`.
   */
  readonly timeoutMs?: number;
  /** How long a new worker may take to load the parser (default 10 000 ms). */
  readonly startupTimeoutMs?: number;
  /** Queries waiting beyond the busy workers; more are refused at once (default 64). */
  readonly maxQueue?: number;
}

/** Parses large SQL texts on worker threads so the event loop never waits on them. */
export interface SqlParserPool {
  /** Analyses `sql` on a worker; never rejects (failures are `ok: false`). */
  analyze(sql: string, options: PortableAnalyzeSqlOptions): Promise<SqlAnalysis>;
  /** Terminates every worker; pending analyses resolve as failures. */
  close(): Promise<void>;
}

interface Task {
  readonly id: number;
  readonly sql: string;
  readonly options: PortableAnalyzeSqlOptions;
  readonly resolve: (a: SqlAnalysis) => void;
  timer: NodeJS.Timeout | undefined;
  slot: Slot | undefined;
}

interface Slot {
  worker: Worker | undefined;
  ready: boolean;
  task: Task | undefined;
}

/**
 * How to start the worker. Built code runs `parse-worker.js` directly. From
 * TypeScript sources (tsx in development and `pnpm start`, jest in tests) the
 * worker first registers tsx's loader, which the workspace runs on.
 */
const startWorker = (): Worker => {
  if (__filename.endsWith('.js')) return new Worker(join(__dirname, 'parse-worker.js'));
  const entry = join(__dirname, 'parse-worker.ts');
  const code = `require(require.resolve('tsx/cjs/api', { paths: [${JSON.stringify(__dirname)}, process.cwd()] })).register();require(${JSON.stringify(entry)});`;
  return new Worker(code, { eval: true });
};

/** Creates a pool of parser worker threads (started lazily, unreferenced while idle). */
export const createSqlParserPool = (options: SqlParserPoolOptions = {}): SqlParserPool => {
  const size = Math.max(1, options.size ?? 2);
  const timeoutMs = options.timeoutMs ?? 2000;
  const maxQueue = options.maxQueue ?? 64;
  const startupTimeoutMs = options.startupTimeoutMs ?? 10_000;
  const slots: Slot[] = Array.from({ length: size }, () => ({ worker: undefined, ready: false, task: undefined }));
  const queue: Task[] = [];
  let nextId = 1;
  let closed = false;

  const finish = (task: Task, analysis: SqlAnalysis): void => {
    if (task.timer) clearTimeout(task.timer);
    task.timer = undefined;
    const slot = task.slot;
    if (slot && slot.task === task) {
      slot.task = undefined;
      slot.worker?.unref();
    }
    task.slot = undefined;
    task.resolve(analysis);
    pump();
  };

  const killSlot = (slot: Slot): Promise<unknown> => {
    const w = slot.worker;
    slot.worker = undefined;
    slot.ready = false;
    return w ? w.terminate() : Promise.resolve();
  };

  const failQueue = (reason: string): void => {
    for (const task of queue.splice(0)) finish(task, { ok: false, failure: 'internal', reason });
  };

  const startSlot = (slot: Slot): void => {
    const w = startWorker();
    slot.worker = w;
    slot.ready = false;
    const startup = setTimeout(() => {
      if (slot.worker !== w || slot.ready) return;
      void killSlot(slot);
      failQueue('the SQL parser worker did not start in time');
    }, startupTimeoutMs);
    startup.unref();
    w.on('message', (msg: { ready?: boolean; id?: number; analysis?: SqlAnalysis }) => {
      if (slot.worker !== w) return;
      if (msg.ready !== undefined) {
        clearTimeout(startup);
        if (!msg.ready) {
          void killSlot(slot);
          failQueue('the SQL parser failed to load in a worker');
          return;
        }
        slot.ready = true;
        // Idle workers do not keep the process alive; pump() refs one while it works.
        w.unref();
        pump();
        return;
      }
      const task = slot.task;
      if (task && task.id === msg.id && msg.analysis) finish(task, msg.analysis);
    });
    const fail = (reason: string): void => {
      if (slot.worker !== w) return;
      clearTimeout(startup);
      slot.worker = undefined;
      slot.ready = false;
      const task = slot.task;
      if (task) finish(task, { ok: false, failure: 'internal', reason });
      else if (queue.length > 0 && slots.every((s) => s.worker === undefined)) failQueue(reason);
    };
    w.on('error', (err) => fail(`SQL parser worker failed: ${err.message}`));
    w.on('exit', () => fail('SQL parser worker exited'));
  };

  const pump = (): void => {
    for (const slot of slots) {
      if (closed || queue.length === 0) return;
      if (slot.task) continue;
      if (!slot.worker) {
        startSlot(slot);
        continue;
      }
      if (!slot.ready) continue;
      const task = queue.shift() as Task;
      slot.task = task;
      task.slot = slot;
      slot.worker.ref();
      task.timer = setTimeout(() => {
        task.timer = undefined;
        // Still parsing: the only way to stop WASM is to end the thread.
        slot.task = undefined;
        void killSlot(slot);
        finish(task, { ok: false, failure: 'timeout', reason: `parsing exceeded the time budget of ${timeoutMs} ms` });
      }, timeoutMs);
      const req: ParseRequest = { id: task.id, sql: task.sql, options: task.options };
      slot.worker.postMessage(req);
    }
  };

  return {
    analyze: (sql, analyzeOptions) =>
      new Promise<SqlAnalysis>((resolve) => {
        if (closed) return resolve({ ok: false, failure: 'busy', reason: 'the SQL parser pool is closed' });
        if (queue.length >= maxQueue) return resolve({ ok: false, failure: 'busy', reason: 'the SQL parser is overloaded; try again' });
        const task: Task = { id: nextId++, sql, options: analyzeOptions, resolve, timer: undefined, slot: undefined };
        queue.push(task);
        pump();
      }),
    close: async () => {
      closed = true;
      for (const task of queue.splice(0)) finish(task, { ok: false, failure: 'busy', reason: 'the SQL parser pool is closed' });
      const exits = slots.map((slot) => {
        const task = slot.task;
        if (task) finish(task, { ok: false, failure: 'busy', reason: 'the SQL parser pool is closed' });
        return killSlot(slot);
      });
      await Promise.all(exits);
    },
  };
};
