import { appendFile, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError, createCaptureLogger } from '@pa/kit';
import type { AuditEvent } from './audit-event';
import { AuditSpool, type AuditSpoolOptions } from './audit-spool';
import { makeEvent, makeTempDir, ManualTimers, systemError, TestFs } from './audit-test-support';
import { encodeRecord } from './record-codec';

const recordSize = (e: AuditEvent): number => encodeRecord(Buffer.from(JSON.stringify(e))).length;

const drain = async (spool: AuditSpool): Promise<AuditEvent[]> => spool.readUnacked(1_000_000);
const ids = (events: readonly AuditEvent[]): string[] => events.map((e) => e.id);

const waitUntil = async (done: () => boolean): Promise<void> => {
  while (!done()) await new Promise((r) => setImmediate(r));
};

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (err) {
    return err instanceof AppError ? err.code : `not an AppError: ${String(err)}`;
  }
  return 'resolved';
};

describe('AuditSpool', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const opened: AuditSpool[] = [];

  const open = async (options: Partial<AuditSpoolOptions> = {}): Promise<AuditSpool> => {
    const spool = await AuditSpool.open({ dir, groupCommitWindowMs: 1, ...options });
    opened.push(spool);
    return spool;
  };

  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close().catch(() => undefined)));
    await cleanup();
  });

  describe('append', () => {
    it('resolves once the events are durable, and hands them out oldest first', async () => {
      const fs = new TestFs();
      const spool = await open({ fs });
      const events = [makeEvent(), makeEvent(), makeEvent()];
      await spool.append(events[0]!);
      await spool.append([events[1]!, events[2]!]);
      expect(fs.calls.datasync).toBeGreaterThan(0);
      expect(await drain(spool)).toEqual(events);
      expect(spool.stats()).toMatchObject({ pendingEvents: 3, pendingBytes: events.reduce((n, e) => n + recordSize(e), 0), queuedEvents: 0 });
    });

    it('does not resolve before its fsync completes', async () => {
      const fs = new TestFs();
      const spool = await open({ fs });
      fs.hold();
      let isDone = false;
      const appending = spool.append(makeEvent()).then(() => {
        isDone = true;
      });
      await fs.waitForHeld(1);
      expect(isDone).toBe(false);
      expect(await drain(spool)).toEqual([]); // not durable, not visible to the shipper
      fs.release();
      await appending;
      expect(isDone).toBe(true);
      expect(await drain(spool)).toHaveLength(1);
    });

    it('group-commits concurrent appends: one write and one fsync for a burst', async () => {
      const fs = new TestFs();
      const spool = await open({ fs, groupCommitWindowMs: 2, groupCommitMaxEvents: 256 });
      const events = Array.from({ length: 100 }, () => makeEvent());
      await Promise.all(events.map((e) => spool.append(e)));
      expect(fs.calls.datasync).toBe(1);
      expect(fs.calls.write).toBe(1);
      expect(spool.stats().fsyncs).toBe(1);
      expect(ids(await drain(spool))).toEqual(ids(events));
    });

    it('group-commits the appends that arrive while a group is being written', async () => {
      const fs = new TestFs();
      const spool = await open({ fs, groupCommitWindowMs: 0 });
      fs.hold();
      const first = spool.append(makeEvent());
      await fs.waitForHeld(1);
      const later = Array.from({ length: 50 }, () => makeEvent());
      const rest = later.map((e) => spool.append(e));
      expect(spool.stats().queuedEvents).toBe(51);
      fs.release();
      await Promise.all([first, ...rest]);
      expect(fs.calls.datasync).toBe(2); // 51 appends, 2 fsyncs
      expect(await drain(spool)).toHaveLength(51);
    });

    it('commits at once when groupCommitMaxEvents are waiting, without waiting for the window', async () => {
      const timers = new ManualTimers(); // the window timer never fires by itself
      const fs = new TestFs();
      const spool = await open({ fs, timers, groupCommitWindowMs: 1000, groupCommitMaxEvents: 8 });
      await Promise.all(Array.from({ length: 8 }, () => spool.append(makeEvent())));
      expect(fs.calls.datasync).toBe(1);
      await spool.settle(); // the writer is idle again, so the next append opens a new window
      const lone = spool.append(makeEvent());
      await timers.waitForTimer();
      expect(spool.stats().queuedEvents).toBe(1);
      timers.advance(1000);
      await lone;
      expect(fs.calls.datasync).toBe(2);
    });

    it('never strands an append made while the writer is finishing its group', async () => {
      const timers = new ManualTimers(1); // the 0 ms group window fires by itself
      const spool = await open({ timers, groupCommitWindowMs: 0 });
      // Append again a few microtask hops after the previous append resolved, so
      // one of them lands after the writer's last look at its queue but before it
      // has marked itself idle.
      for (let hops = 0; hops < 12; hops += 1) {
        await spool.append(makeEvent());
        for (let i = 0; i < hops; i += 1) await null;
        await spool.append(makeEvent());
      }
      expect(spool.stats().pendingEvents).toBe(24);
    });

    it('keeps call order across groups and segments', async () => {
      const spool = await open({ segmentBytes: 2000 });
      const events = Array.from({ length: 40 }, () => makeEvent());
      const appends: Promise<void>[] = [];
      for (let i = 0; i < events.length; i += 4) appends.push(spool.append(events.slice(i, i + 4)));
      await Promise.all(appends);
      expect(spool.stats().segments).toBeGreaterThan(3);
      expect(ids(await drain(spool))).toEqual(ids(events));
      expect(ids(await spool.readUnacked(5))).toEqual(ids(events.slice(0, 5)));
    });

    it('rejects an invalid or oversized event with VALIDATION_FAILED and writes nothing', async () => {
      const fs = new TestFs();
      const spool = await open({ fs, maxRecordBytes: 2048 });
      expect(await codeOf(spool.append({ ...makeEvent(), id: 'nope' }))).toBe('VALIDATION_FAILED');
      expect(await codeOf(spool.append(makeEvent({ details: { n: Number.NaN } })))).toBe('VALIDATION_FAILED');
      expect(await codeOf(spool.append(makeEvent({ details: { big: 'x'.repeat(4096) } })))).toBe('VALIDATION_FAILED');
      // A batch with one bad event is refused whole.
      expect(await codeOf(spool.append([makeEvent(), { ...makeEvent(), action: 'Bad Action' }]))).toBe('VALIDATION_FAILED');
      expect(fs.calls.write).toBe(0);
      expect(spool.stats().pendingEvents).toBe(0);
    });
  });

  describe('capacity', () => {
    it('refuses with AUDIT_SPOOL_FULL past the bound, immediately, and accepts again once acks free space', async () => {
      const sample = makeEvent();
      const size = recordSize(sample);
      const spool = await open({ capacityBytes: size * 4, admissionHeadroomBytes: size + 1 });
      const events = Array.from({ length: 4 }, () => makeEvent());
      for (const e of events.slice(0, 3)) await spool.append(e);
      expect(spool.canAccept()).toBe(false); // only the headroom is left: new work is turned away
      await spool.append(events[3]!); // but an outcome still fits up to the hard bound
      expect(spool.admission()).toBe('full');

      const refused = makeEvent();
      expect(await codeOf(spool.append(refused))).toBe('AUDIT_SPOOL_FULL');
      expect(spool.stats().refusals).toBe(1);

      await spool.ack([events[1]!.id, events[0]!.id]);
      expect(spool.canAccept()).toBe(true);
      await spool.append(refused);
      expect(ids(await drain(spool))).toEqual([events[2]!.id, events[3]!.id, refused.id]);
    });

    it('counts events waiting for their group against the bound', async () => {
      const timers = new ManualTimers();
      const sample = makeEvent();
      const spool = await open({ timers, groupCommitWindowMs: 50, capacityBytes: recordSize(sample) * 2, admissionHeadroomBytes: 0 });
      const a = spool.append(makeEvent());
      const b = spool.append(makeEvent());
      expect(await codeOf(spool.append(makeEvent()))).toBe('AUDIT_SPOOL_FULL');
      expect(spool.canAccept()).toBe(false);
      timers.advance(50);
      await Promise.all([a, b]);
    });

    it('logs the transition to full once, not every refusal', async () => {
      const { logger, lines } = createCaptureLogger('test');
      const sample = makeEvent();
      const spool = await open({ logger, capacityBytes: recordSize(sample), admissionHeadroomBytes: 0 });
      await spool.append(sample);
      for (let i = 0; i < 5; i += 1) expect(await codeOf(spool.append(makeEvent()))).toBe('AUDIT_SPOOL_FULL');
      expect(lines.filter((l) => l.includes('Audit spool is full')).length).toBe(1);
    });
  });

  describe('acks', () => {
    it('takes acks per event, out of order, ignoring unknown and repeated ids', async () => {
      const spool = await open();
      const events = Array.from({ length: 6 }, () => makeEvent());
      await spool.append(events);
      await spool.ack([events[4]!.id, 'evt_unknown', events[1]!.id]);
      await spool.ack([events[4]!.id]);
      expect(ids(await drain(spool))).toEqual(ids([events[0]!, events[2]!, events[3]!, events[5]!]));
      expect(spool.stats().pendingEvents).toBe(4);
      await spool.ack(ids(events));
      expect(await drain(spool)).toEqual([]);
      expect(spool.stats()).toMatchObject({ pendingEvents: 0, pendingBytes: 0 });
    });

    it('deletes a sealed segment (and its ack file) once every event in it is acked', async () => {
      const sample = makeEvent();
      const spool = await open({ segmentBytes: recordSize(sample) * 3 });
      const events = Array.from({ length: 7 }, () => makeEvent());
      for (const e of events) await spool.append(e);
      const before = (await readdir(dir)).filter((n) => n.endsWith('.seg'));
      expect(before).toHaveLength(3);

      await spool.ack([events[2]!.id, events[0]!.id]); // first segment partly acked: stays, with an ack file
      expect((await readdir(dir)).sort()).toEqual([...before, before[0]!.replace('.seg', '.ack')].sort());
      await spool.ack([events[1]!.id]); // now fully acked: gone
      expect((await readdir(dir)).sort()).toEqual(before.slice(1));

      await spool.ack(ids(events.slice(3, 6)));
      expect((await readdir(dir)).sort()).toEqual(before.slice(2)); // the active segment stays until sealed
      expect(spool.stats().segments).toBe(1);
    });
  });

  describe('spooled reads', () => {
    it('reads each event as stored: its JSON, id first, the same event readUnacked decodes', async () => {
      const spool = await open();
      const events = [makeEvent(), makeEvent({ details: { sql: 'select "quoted" é' } }), makeEvent()];
      await spool.append(events);
      const late = makeEvent();
      const { id, ...rest } = late;
      await spool.appendJson(id, JSON.stringify({ id, ...rest }));
      const spooled = await spool.readUnackedSpooled(10);
      expect(spooled.map((e) => e.id)).toEqual(ids([...events, late]));
      for (const e of spooled) expect(e.json.toString('utf8').startsWith(`{"id":"${e.id}",`)).toBe(true);
      expect(spooled.map((e) => JSON.parse(e.json.toString('utf8')) as unknown)).toEqual(await spool.readUnacked(10));
      // Reading does not consume: until acked, the same events come back.
      await spool.ack([events[0]!.id]);
      expect((await spool.readUnackedSpooled(2)).map((e) => e.id)).toEqual(ids(events.slice(1)));
    });

    it('checks a record that is not id first by decoding it, and drops one whose id is not the one indexed', async () => {
      const { logger, lines } = createCaptureLogger('test');
      const spool = await open({ logger });
      const older = makeEvent();
      // Written id last, as an older writer might have.
      const { id: olderId, ...olderRest } = older;
      await spool.appendJson(olderId, JSON.stringify({ ...olderRest, id: olderId }));
      const lying = makeEvent();
      await spool.appendJson(makeEvent().id, JSON.stringify(lying));
      const good = makeEvent();
      await spool.append(good);
      const spooled = await spool.readUnackedSpooled(10);
      expect(spooled.map((e) => e.id)).toEqual([olderId, good.id]);
      expect(JSON.parse(spooled[0]!.json.toString('utf8'))).toEqual(older);
      expect(lines.some((l) => l.includes('Audit record is unreadable; dropped.'))).toBe(true);
    });
  });

  describe('restart', () => {
    it('a new spool on the same directory sees the unacked events and not the acked ones', async () => {
      const first = await open();
      const events = Array.from({ length: 10 }, () => makeEvent());
      await first.append(events);
      await first.ack([events[7]!.id, events[0]!.id, events[3]!.id]);
      await first.close();

      const second = await open();
      const expected = events.filter((_, i) => ![0, 3, 7].includes(i));
      expect(await drain(second)).toEqual(expected);
      expect(second.stats().pendingEvents).toBe(7);
      await second.append(makeEvent());
      expect(await drain(second)).toHaveLength(8);
    });

    it('survives a crash: every append that resolved is there after it', async () => {
      const fs = new TestFs();
      const first = await open({ fs, segmentBytes: 1500 });
      const events = Array.from({ length: 12 }, () => makeEvent());
      for (const e of events) await first.append(e);
      await first.ack([events[1]!.id]);
      await fs.crash(); // no close(): the process died

      const second = await open();
      expect(ids(await drain(second))).toEqual(ids(events.filter((_, i) => i !== 1)));
    });

    it('removes fully acked segments and orphan ack files at start-up and never reuses a number', async () => {
      const first = await open({ segmentBytes: 1 });
      const events = [makeEvent(), makeEvent(), makeEvent()];
      for (const e of events) await first.append(e);
      await first.close();
      await writeFile(join(dir, '00000000000000000042.ack'), encodeRecord(Buffer.from('[0]')));
      await writeFile(join(dir, 'unrelated.txt'), 'left alone');

      const second = await open();
      await second.ack([events[0]!.id, events[1]!.id]);
      await second.append(makeEvent()); // numbered after the orphan, whose file is gone now
      await second.close();
      const names = (await readdir(dir)).sort();
      expect(names).toEqual(['00000000000000000003.seg', '00000000000000000043.seg', 'unrelated.txt']);

      const third = await open();
      expect(await drain(third)).toHaveLength(2);
      expect(ids(await drain(third))[0]).toBe(events[2]!.id);
    });
  });

  describe('torn and damaged files', () => {
    const lastSegment = async (): Promise<string> => {
      const segs = (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
      return join(dir, segs[segs.length - 1]!);
    };

    it('truncates garbage appended after the last record and keeps every earlier event', async () => {
      const first = await open();
      const events = [makeEvent(), makeEvent(), makeEvent()];
      await first.append(events);
      await first.close();
      const path = await lastSegment();
      const goodSize = (await stat(path)).size;
      await appendFile(path, Buffer.from('PAR1\u0000\u0000\u0001\u0000garbage from a torn write'));

      const { logger, lines } = createCaptureLogger('test');
      const second = await open({ logger });
      expect(await drain(second)).toEqual(events);
      expect((await stat(path)).size).toBe(goodSize);
      expect(lines.some((l) => l.includes('torn tail'))).toBe(true);
    });

    it('drops a record cut mid-way (at any point) and keeps the ones before it', async () => {
      const first = await open();
      const events = [makeEvent(), makeEvent(), makeEvent()];
      await first.append(events);
      await first.close();
      const path = await lastSegment();
      const whole = await readFile(path);
      const lastStart = whole.length - recordSize(events[2]!);
      for (const cut of [lastStart + 1, lastStart + 7, lastStart + 12, whole.length - 1]) {
        await writeFile(path, whole.subarray(0, cut));
        const spool = await open();
        expect(await drain(spool)).toEqual(events.slice(0, 2));
        expect((await stat(path)).size).toBe(lastStart);
        await spool.close();
      }
    });

    it('skips a damaged record in the middle, logs it, and recovers the ones after it', async () => {
      const first = await open();
      const events = [makeEvent(), makeEvent(), makeEvent()];
      await first.append(events);
      await first.close();
      const path = await lastSegment();
      const buf = await readFile(path);
      const mid = recordSize(events[0]!) + 20;
      buf[mid] = (buf[mid] as number) ^ 0xff;
      await writeFile(path, buf);

      const { logger, lines } = createCaptureLogger('test');
      const second = await open({ logger });
      expect(await drain(second)).toEqual([events[0], events[2]]);
      expect(lines.some((l) => l.includes('damaged records'))).toBe(true);
      // No event content reaches the log.
      expect(lines.join('\n')).not.toContain('select');
    });

    it('opens a segment of pure garbage without crashing and ignores a damaged ack file', async () => {
      const first = await open();
      const events = [makeEvent(), makeEvent()];
      await first.append(events);
      await first.ack([events[0]!.id]);
      await first.close();
      const path = await lastSegment();
      await appendFile(path.replace('.seg', '.ack'), Buffer.from('\u0000\u0001garbage'));
      await writeFile(join(dir, '00000000000000000099.seg'), Buffer.alloc(4096, 0xab));

      const second = await open();
      expect(await drain(second)).toEqual([events[1]]);
      expect(await readdir(dir)).not.toContain('00000000000000000099.seg'); // nothing in it: removed
    });

    it('drops (and does not ship) a record that no longer reads back correctly', async () => {
      const { logger, lines } = createCaptureLogger('test');
      const spool = await open({ logger });
      const events = [makeEvent(), makeEvent(), makeEvent()];
      await spool.append(events);
      const path = await lastSegment();
      const buf = await readFile(path);
      const mid = recordSize(events[0]!) + 30;
      buf[mid] = (buf[mid] as number) ^ 0x01;
      await writeFile(path, buf);
      expect(await drain(spool)).toEqual([events[0], events[2]]);
      expect(spool.stats().droppedRecords).toBe(1);
      expect(lines.some((l) => l.includes('unreadable'))).toBe(true);
      expect(await drain(spool)).toEqual([events[0], events[2]]);
    });
  });

  describe('unwritable spool', () => {
    it('refuses everything when the directory cannot be created (a path under a regular file), and logs why', async () => {
      const file = join(dir, 'not-a-dir');
      await writeFile(file, 'x');
      const timers = new ManualTimers();
      const { logger, lines } = createCaptureLogger('test');
      const spool = await open({ dir: join(file, 'spool'), timers, logger, retryAfterMs: 1000 });
      expect(spool.canAccept()).toBe(false);
      expect(spool.admission()).toBe('unavailable');
      expect(await codeOf(spool.append(makeEvent()))).toBe('AUDIT_UNAVAILABLE');
      expect(lines.some((l) => l.includes('could not be opened') && l.includes('ENOTDIR'))).toBe(true);

      timers.advance(1000); // time to try again: the next append probes, and fails again
      expect(spool.canAccept()).toBe(true);
      const probe = spool.append(makeEvent());
      timers.advance(1);
      expect(await codeOf(probe)).toBe('AUDIT_UNAVAILABLE');
      expect(spool.canAccept()).toBe(false);
    });

    it('refuses while the directory is read-only (as a non-root user would see it)', async () => {
      const fs = new TestFs();
      fs.failWith = (op) => (op === 'open' ? systemError('EACCES') : undefined);
      const spool = await open({ fs });
      expect(await codeOf(spool.append(makeEvent()))).toBe('AUDIT_UNAVAILABLE');
      expect(spool.canAccept()).toBe(false);
      expect((await readdir(dir)).filter((n) => n.endsWith('.seg'))).toEqual([]);
    });

    it('refuses the group whose fsync failed, cuts it off the file, and recovers after the pause', async () => {
      const fs = new TestFs();
      const timers = new ManualTimers(2); // the 1 ms group window fires by itself
      const { logger, lines } = createCaptureLogger('test');
      const spool = await open({ fs, timers, logger, retryAfterMs: 5000 });
      const kept = makeEvent();
      await spool.append(kept);

      fs.failWith = (op) => (op === 'datasync' ? systemError('EIO') : undefined);
      const lost = [makeEvent(), makeEvent()];
      const codes = await Promise.all(lost.map((e) => codeOf(spool.append(e))));
      expect(codes).toEqual(['AUDIT_UNAVAILABLE', 'AUDIT_UNAVAILABLE']);
      expect(spool.canAccept()).toBe(false);
      expect(await codeOf(spool.append(makeEvent()))).toBe('AUDIT_UNAVAILABLE'); // immediate, no disk touched
      expect(lines.some((l) => l.includes('write failed') && l.includes('EIO'))).toBe(true);

      fs.failWith = () => undefined;
      timers.advance(5000);
      expect(spool.canAccept()).toBe(true);
      const after = makeEvent();
      await spool.append(after);
      expect(ids(await drain(spool))).toEqual([kept.id, after.id]);
      await spool.close();

      const reopened = await open();
      expect(ids(await drain(reopened))).toEqual([kept.id, after.id]); // the refused ones never come back
    });

    it('refuses on ENOSPC during the write', async () => {
      const fs = new TestFs();
      const spool = await open({ fs });
      fs.failWith = (op) => (op === 'write' ? systemError('ENOSPC') : undefined);
      expect(await codeOf(spool.append(makeEvent()))).toBe('AUDIT_UNAVAILABLE');
      expect(spool.stats()).toMatchObject({ isWritable: false, pendingEvents: 0, queuedEvents: 0, queuedBytes: 0 });
    });
  });

  describe('written durability', () => {
    const segmentText = async (): Promise<string> => {
      const names = (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
      const texts = await Promise.all(names.map((n) => readFile(join(dir, n), 'utf8')));
      return texts.join('');
    };

    it('resolves an append once it is in the file, before its fsync; the shipper sees it only once durable', async () => {
      const fs = new TestFs();
      const spool = await open({ fs, durability: 'written', groupCommitWindowMs: 0 });
      const first = makeEvent();
      await spool.append(first); // no segment yet: this one takes the writer's path
      fs.hold();
      const second = makeEvent();
      const writesBefore = fs.calls.write;
      await spool.append(second); // would never resolve while fsyncs are held if it waited for one
      expect(fs.calls.write).toBe(writesBefore + 1);
      expect(await segmentText()).toContain(second.id);
      await fs.waitForHeld(1);
      expect(ids(await drain(spool))).toEqual([first.id]);
      expect(spool.stats()).toMatchObject({ pendingEvents: 1, queuedEvents: 1 });
      fs.release();
      await spool.settle();
      expect(ids(await drain(spool))).toEqual([first.id, second.id]);
      expect(spool.stats()).toMatchObject({ pendingEvents: 2, queuedEvents: 0, lostEvents: 0 });
    });

    it('writes the appends of one tick with one write, also during an fsync, and covers them with the next fsync', async () => {
      const fs = new TestFs();
      const spool = await open({ fs, durability: 'written', groupCommitWindowMs: 0 });
      await spool.append(makeEvent());
      fs.hold();
      await spool.append(makeEvent());
      await fs.waitForHeld(1);
      const fsyncsBefore = fs.calls.datasync;
      const writesBefore = fs.calls.write;
      const burst = Array.from({ length: 20 }, () => makeEvent());
      await Promise.all(burst.map((e) => spool.append(e)));
      expect(fs.calls.write - writesBefore).toBe(1); // appends of one tick share a write
      fs.release();
      await spool.settle();
      expect(fs.calls.datasync - fsyncsBefore).toBe(1); // the held one finishes, one more for the burst
      expect(ids(await drain(spool)).slice(-20)).toEqual(ids(burst));
    });

    it('under steady load, written records wait for the window: at most one fsync per window', async () => {
      const fs = new TestFs();
      const timers = new ManualTimers();
      const spool = await open({ fs, timers, durability: 'written', groupCommitWindowMs: 50 });
      const first = spool.append(makeEvent()); // no segment yet: the writer's path, after the window
      await waitUntil(() => timers.pendingDelays().length === 1);
      timers.advance(50);
      await first;
      const fsyncs = fs.calls.datasync;
      for (let i = 0; i < 5; i += 1) await spool.append(makeEvent()); // written at once, nothing waits
      for (let round = 1; round <= 3; round += 1) {
        await waitUntil(() => timers.pendingDelays().length === 1);
        expect(fs.calls.datasync).toBe(fsyncs + round - 1); // not before the window ends
        fs.hold();
        timers.advance(50); // the window ends: a group commit starts, its fsync held
        await fs.waitForHeld(1);
        for (let i = 0; i < 5; i += 1) await spool.append(makeEvent()); // written during that fsync
        fs.release();
      }
      // The last five wait for their window like the others: no fsync straight after the one before.
      await waitUntil(() => timers.pendingDelays().length === 1);
      expect(fs.calls.datasync).toBe(fsyncs + 3);
      await spool.settle();
      expect(ids(await drain(spool))).toHaveLength(21);
    });

    it('keeps call order across segments, and every event is there after a process crash without fsync', async () => {
      const fs = new TestFs();
      const sample = makeEvent();
      // Five records a segment: 11 appends fill two and start a third, which has room for the late ones.
      const spool = await open({ fs, durability: 'written', groupCommitWindowMs: 0, segmentBytes: recordSize(sample) * 5 });
      const events: AuditEvent[] = [];
      for (let i = 0; i < 11; i += 1) events.push(makeEvent());
      await Promise.all(events.map((e) => spool.append(e)));
      await spool.settle();
      expect((await readdir(dir)).filter((n) => n.endsWith('.seg'))).toHaveLength(3);
      fs.hold();
      const late = [makeEvent(), makeEvent()];
      for (const e of late) await spool.append(e);
      expect(spool.stats().queuedEvents).toBe(2);
      await fs.crash(); // the process dies before that fsync: the kernel still has the writes
      const reopened = await open();
      expect(ids(await drain(reopened))).toEqual(ids([...events, ...late]));
    });

    it('refuses the append whose write fails, keeps what was written before, and recovers after the pause', async () => {
      const fs = new TestFs();
      const timers = new ManualTimers(2);
      const { logger, lines } = createCaptureLogger('test');
      const spool = await open({ fs, timers, logger, durability: 'written', retryAfterMs: 5000 });
      const kept = [makeEvent(), makeEvent()];
      for (const e of kept) await spool.append(e);
      fs.failWith = (op) => (op === 'write' ? systemError('ENOSPC') : undefined);
      expect(await codeOf(spool.append(makeEvent()))).toBe('AUDIT_UNAVAILABLE');
      expect(spool.canAccept()).toBe(false);
      expect(lines.some((l) => l.includes('write failed') && l.includes('ENOSPC'))).toBe(true);
      fs.failWith = () => undefined;
      await spool.settle();
      timers.advance(5000);
      expect(spool.canAccept()).toBe(true);
      const after = makeEvent();
      await spool.append(after);
      await spool.settle();
      expect(ids(await drain(spool))).toEqual([...ids(kept), after.id]);
      expect(spool.stats().lostEvents).toBe(0);
    });

    it('counts and logs events already written when their fsync fails, and refuses new ones', async () => {
      const fs = new TestFs();
      const timers = new ManualTimers(2);
      const { logger, lines } = createCaptureLogger('test');
      const spool = await open({ fs, timers, logger, durability: 'written', retryAfterMs: 5000 });
      const kept = makeEvent();
      await spool.append(kept);
      fs.failWith = (op) => (op === 'datasync' ? systemError('EIO') : undefined);
      await spool.append(makeEvent()); // written: it resolves; its fsync then fails
      await spool.settle();
      expect(spool.stats()).toMatchObject({ lostEvents: 1, isWritable: false });
      expect(spool.canAccept()).toBe(false);
      expect(lines.some((l) => l.includes('could not be made durable') && l.includes('"events":1'))).toBe(true);
      fs.failWith = () => undefined;
      timers.advance(5000);
      const after = makeEvent();
      await spool.append(after);
      await spool.settle();
      expect(ids(await drain(spool))).toEqual([kept.id, after.id]);
    });
  });

  describe('close', () => {
    it('commits what was accepted, then refuses', async () => {
      const timers = new ManualTimers();
      const spool = await open({ timers, groupCommitWindowMs: 10_000 });
      const pending = spool.append(makeEvent());
      await spool.close();
      await pending;
      expect(await codeOf(spool.append(makeEvent()))).toBe('AUDIT_UNAVAILABLE');
      const reopened = await open();
      expect(await drain(reopened)).toHaveLength(1);
    });
  });

  it('ignores a truncated (empty) segment file', async () => {
    const first = await open();
    await first.append(makeEvent());
    await first.close();
    const segs = (await readdir(dir)).filter((n) => n.endsWith('.seg'));
    await truncate(join(dir, segs[0]!), 0);
    const second = await open();
    expect(await drain(second)).toEqual([]);
  });
});
