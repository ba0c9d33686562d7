/**
 * Test support for the audit spool, shipper and recorder (used by the tests
 * beside this file only): an event factory, a file system that counts fsyncs,
 * injects failures and simulates a crash, controllable timers, and a fake
 * control plane.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId } from '@pa/kit';
import type { AuditEvent } from './audit-event';
import type { AuditTransport } from './audit-shipper';
import type { SpooledEvent } from './audit-spool';
import { nodeSpoolFs, type SpoolFileHandle, type SpoolFs } from './spool-fs';
import type { AuditTimers } from './timers';

let counter = 0;

/** A valid event; each call gets a fresh id, later calls sort after earlier ones. */
export const makeEvent = (overrides: Partial<AuditEvent> = {}): AuditEvent => {
  counter += 1;
  return {
    id: newId('evt', 1_700_000_000_000 + counter),
    time: new Date(1_700_000_000_000 + counter).toISOString(),
    nodeId: 'node-1',
    action: 'sql.statement',
    outcome: 'allowed',
    actor: { id: 'usr_01hzzzzzzzzzzzzzzzzzzzzzzz', name: 'alice' },
    connectionId: 'con_01hzzzzzzzzzzzzzzzzzzzzzzz',
    connectionName: 'orders-db',
    grantId: 'grt_01hzzzzzzzzzzzzzzzzzzzzzzz',
    sessionId: 'ses_01hzzzzzzzzzzzzzzzzzzzzzzz',
    protocol: 'postgres',
    // Fixed width, so every default event has the same serialised size.
    details: { sql: `select ${String(counter).padStart(9, '0')}` },
    ...overrides,
  };
};

/** A fresh temporary directory and its removal. */
export const makeTempDir = async (): Promise<{ dir: string; cleanup: () => Promise<void> }> => {
  const dir = await mkdtemp(join(tmpdir(), 'pa-audit-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
};

/** File-system operations a {@link TestFs} can be told to fail. */
export type TestFsOp = 'mkdir' | 'readdir' | 'open' | 'readFile' | 'appendFile' | 'unlink' | 'syncDir' | 'write' | 'datasync' | 'truncate' | 'read';

/** A Node-style system error (`code` set). */
export const systemError = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: injected`), { code });

/**
 * The real file system with instruments: counts calls, fails the operations
 * `failWith` returns an error for, can hold every datasync until released, and
 * `crash()` closes every handle at once and refuses all later calls (a process
 * that died, as far as its files are concerned).
 */
export class TestFs implements SpoolFs {
  readonly calls: Record<TestFsOp, number> = {
    mkdir: 0, readdir: 0, open: 0, readFile: 0, appendFile: 0, unlink: 0, syncDir: 0, write: 0, datasync: 0, truncate: 0, read: 0,
  };
  /** Return an error to make that call fail. */
  failWith: (op: TestFsOp, path: string) => Error | undefined = () => undefined;
  private gate: Promise<void> | undefined;
  private releaseGate: (() => void) | undefined;
  private gatedWaiters: (() => void)[] = [];
  private gatedCount = 0;
  private readonly handles = new Set<SpoolFileHandle>();
  private isCrashed = false;

  constructor(private readonly inner: SpoolFs = nodeSpoolFs) {}

  /** Holds every datasync from now on until {@link TestFs.release}. */
  hold(): void {
    this.gate ??= new Promise<void>((resolve) => {
      this.releaseGate = resolve;
    });
  }

  release(): void {
    this.releaseGate?.();
    this.gate = undefined;
    this.releaseGate = undefined;
  }

  /** Resolves once `n` datasync calls are waiting at the gate. */
  waitForHeld(n = 1): Promise<void> {
    if (this.gatedCount >= n) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.gatedCount >= n) resolve();
        else this.gatedWaiters.push(check);
      };
      this.gatedWaiters.push(check);
    });
  }

  async crash(): Promise<void> {
    this.isCrashed = true;
    await Promise.all([...this.handles].map((h) => h.close().catch(() => undefined)));
    this.handles.clear();
  }

  private check(op: TestFsOp, path: string): void {
    if (this.isCrashed) throw new Error('The process crashed.');
    this.calls[op] += 1;
    const err = this.failWith(op, path);
    if (err !== undefined) throw err;
  }

  async mkdir(path: string): Promise<void> {
    this.check('mkdir', path);
    return this.inner.mkdir(path);
  }

  async readdir(path: string): Promise<string[]> {
    this.check('readdir', path);
    return this.inner.readdir(path);
  }

  async readFile(path: string): Promise<Buffer> {
    this.check('readFile', path);
    return this.inner.readFile(path);
  }

  async appendFile(path: string, data: Uint8Array): Promise<void> {
    this.check('appendFile', path);
    return this.inner.appendFile(path, data);
  }

  async unlink(path: string): Promise<void> {
    this.check('unlink', path);
    return this.inner.unlink(path);
  }

  async syncDir(path: string): Promise<void> {
    this.check('syncDir', path);
    return this.inner.syncDir(path);
  }

  async open(path: string, flags: 'wx' | 'r' | 'r+'): Promise<SpoolFileHandle> {
    this.check('open', path);
    const fh = await this.inner.open(path, flags);
    this.handles.add(fh);
    return {
      write: async (buffer, offset, length, position) => {
        this.check('write', path);
        return fh.write(buffer, offset, length, position);
      },
      ...(fh.writeSync === undefined
        ? {}
        : {
            writeSync: (buffer: Uint8Array, offset: number, length: number, position: number): number => {
              this.check('write', path);
              return (fh.writeSync as NonNullable<SpoolFileHandle['writeSync']>)(buffer, offset, length, position);
            },
          }),
      read: async (buffer, offset, length, position) => {
        this.check('read', path);
        return fh.read(buffer, offset, length, position);
      },
      datasync: async () => {
        this.check('datasync', path);
        if (this.gate !== undefined) {
          const gate = this.gate;
          this.gatedCount += 1;
          const waiters = this.gatedWaiters;
          this.gatedWaiters = [];
          for (const w of waiters) w();
          await gate;
          this.gatedCount -= 1;
        }
        if (this.isCrashed) throw new Error('The process crashed.');
        return fh.datasync();
      },
      truncate: async (length) => {
        this.check('truncate', path);
        return fh.truncate(length);
      },
      close: async () => {
        if (!this.handles.delete(fh)) return;
        return fh.close();
      },
    };
  }
}

/**
 * Timers under the test's control. Timers shorter than `autoFireBelowMs` fire
 * on their own on the next macrotask (advancing the clock by their delay);
 * longer ones wait for {@link ManualTimers.advance}. Every requested delay is
 * kept in `requested`.
 */
export class ManualTimers implements AuditTimers {
  readonly requested: number[] = [];
  private clock: number;
  private seq = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();
  private readonly setWaiters: (() => void)[] = [];

  constructor(
    private readonly autoFireBelowMs = 0,
    start = 1_700_000_000_000,
  ) {
    this.clock = start;
  }

  now(): number {
    return this.clock;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    this.seq += 1;
    const id = this.seq;
    this.requested.push(ms);
    if (ms < this.autoFireBelowMs) {
      setImmediate(() => {
        if (!this.pending.delete(id)) return;
        this.clock += ms;
        fn();
      });
    }
    this.pending.set(id, { at: this.clock + ms, fn });
    for (const w of this.setWaiters.splice(0)) w();
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Moves the clock on by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.clock + ms;
    for (;;) {
      let nextId: number | undefined;
      let next: { at: number; fn: () => void } | undefined;
      for (const [id, t] of this.pending) {
        if (t.at <= target && (next === undefined || t.at < next.at)) {
          nextId = id;
          next = t;
        }
      }
      if (next === undefined || nextId === undefined) break;
      this.pending.delete(nextId);
      this.clock = Math.max(this.clock, next.at);
      next.fn();
    }
    this.clock = target;
  }

  /** Delays of the timers not yet fired. */
  pendingDelays(): number[] {
    return [...this.pending.values()].map((t) => t.at - this.clock);
  }

  /** Resolves when a timer satisfying `predicate` (on its remaining delay) is pending. */
  async waitForTimer(predicate: (remainingMs: number) => boolean = () => true): Promise<void> {
    while (!this.pendingDelays().some(predicate)) {
      await new Promise<void>((resolve) => this.setWaiters.push(resolve));
    }
  }
}

/**
 * A fake control plane: stores every event it is sent (duplicates included, as
 * a real idempotent store would see them), fails while `failuresLeft` > 0 or
 * while `isDown`, and acknowledges what `pickAcks` chooses (all, by default).
 */
export class FakeControlPlane implements AuditTransport {
  /** Every event received, in arrival order, duplicates included. */
  readonly received: AuditEvent[] = [];
  readonly calls: AuditEvent[][] = [];
  failuresLeft = 0;
  /** Sends that store the batch and then fail (the answer was lost on the way back). */
  lostAnswersLeft = 0;
  isDown = false;
  /** When set, sends hang until {@link FakeControlPlane.unhang}. */
  isHanging = false;
  pickAcks: (batch: AuditEvent[]) => string[] = (batch) => batch.map((e) => e.id);
  private hung: (() => void)[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];
  private callWaiters: (() => void)[] = [];

  async send(events: AuditEvent[]): Promise<{ acked: string[] }> {
    this.calls.push([...events]);
    for (const w of this.callWaiters.splice(0)) w();
    if (this.isHanging) await new Promise<void>((resolve) => this.hung.push(resolve));
    if (this.isDown) throw systemError('ECONNREFUSED');
    if (this.failuresLeft > 0) {
      this.failuresLeft -= 1;
      throw systemError('ECONNREFUSED');
    }
    this.received.push(...events);
    this.notify();
    if (this.lostAnswersLeft > 0) {
      this.lostAnswersLeft -= 1;
      throw systemError('ECONNRESET');
    }
    return { acked: this.pickAcks(events) };
  }

  unhang(): void {
    this.isHanging = false;
    for (const h of this.hung.splice(0)) h();
  }

  /** Resolves once `send` has been called at least `n` times. */
  async waitForCalls(n: number): Promise<void> {
    while (this.calls.length < n) await new Promise<void>((resolve) => this.callWaiters.push(resolve));
  }

  /** Distinct ids received, in order of first arrival (what an idempotent store keeps). */
  storedIds(): string[] {
    return [...new Set(this.received.map((e) => e.id))];
  }

  /** Resolves when at least `n` distinct events have been stored. */
  waitForStored(n: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiters.push({ n, resolve });
      this.notify();
    });
  }

  private notify(): void {
    const stored = this.storedIds().length;
    this.waiters = this.waiters.filter((w) => {
      if (stored < w.n) return true;
      w.resolve();
      return false;
    });
  }
}

/**
 * The fake control plane taking events as spooled, as the node's gRPC
 * transport sends them: it keeps the raw JSON it was given and stores the
 * events it decodes from it (so every assertion on the plain fake holds).
 */
export class FakeSpooledControlPlane extends FakeControlPlane {
  /** Every payload of a send that succeeded, in arrival order. */
  readonly raw: Buffer[] = [];

  async sendSpooled(events: SpooledEvent[]): Promise<{ acked: string[] }> {
    const res = await this.send(events.map((e) => JSON.parse(e.json.toString('utf8')) as AuditEvent));
    this.raw.push(...events.map((e) => e.json));
    return res;
  }
}
