import { readdir } from 'node:fs/promises';
import { createCaptureLogger } from '@pa/kit';
import type { AuditEvent } from './audit-event';
import { AuditShipper, type AuditShipperOptions } from './audit-shipper';
import { AuditSpool } from './audit-spool';
import { FakeControlPlane, FakeSpooledControlPlane, makeEvent, makeTempDir, ManualTimers, TestFs } from './audit-test-support';

const ids = (events: readonly AuditEvent[]): string[] => events.map((e) => e.id);
const NEVER = 1e12;

describe('AuditShipper', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const spools: AuditSpool[] = [];
  const shippers: AuditShipper[] = [];

  const openSpool = async (options: { fs?: TestFs; segmentBytes?: number; timers?: ManualTimers } = {}): Promise<AuditSpool> => {
    const spool = await AuditSpool.open({ dir, groupCommitWindowMs: 0, ...options });
    spools.push(spool);
    return spool;
  };

  const makeShipper = (options: Partial<AuditShipperOptions> & Pick<AuditShipperOptions, 'spool' | 'transport'>): AuditShipper => {
    const shipper = new AuditShipper({ sendTimeoutMs: NEVER, random: () => 0.5, ...options });
    shippers.push(shipper);
    return shipper;
  };

  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });

  afterEach(async () => {
    await Promise.all(shippers.splice(0).map((s) => s.stop()));
    await Promise.all(spools.splice(0).map((s) => s.close()));
    await cleanup();
  });

  it('ships every event exactly once, in order, after the control plane was down for a while', async () => {
    const spool = await openSpool();
    const cp = new FakeControlPlane();
    cp.failuresLeft = 5;
    const timers = new ManualTimers(1e9); // backoff waits pass at once, and are recorded
    const shipper = makeShipper({ spool, transport: cp, timers, batchSize: 7, initialBackoffMs: 100, maxBackoffMs: 1000 });
    const events = Array.from({ length: 30 }, () => makeEvent());
    await spool.append(events);

    shipper.start();
    const result = await shipper.flush(NEVER);

    expect(result).toEqual({ drained: true, pendingEvents: 0 });
    expect(cp.storedIds()).toEqual(ids(events));
    expect(cp.received).toHaveLength(30); // failed sends stored nothing, so nothing arrived twice
    expect(cp.calls.map((c) => c.length)).toEqual([7, 7, 7, 7, 7, /* then up: */ 7, 7, 7, 7, 2]);
    expect(ids(cp.calls[5]!)).toEqual(ids(events.slice(0, 7))); // the first batch again, not a later one
    // Backoff doubles from 100 ms to the 1000 ms cap; with random() = 0.5 each wait is 3/4 of its cap.
    expect(timers.requested.filter((ms) => ms < NEVER)).toEqual([75, 150, 300, 600, 750]);
    expect(shipper.stats()).toMatchObject({ shippedEvents: 30, failures: 5, consecutiveFailures: 0, pendingEvents: 0, batches: 5 });
    expect(spool.stats().pendingEvents).toBe(0);
  });

  it('sends events as spooled when the transport takes them so: their stored JSON, undecoded, in order, each once', async () => {
    const spool = await openSpool();
    const cp = new FakeSpooledControlPlane();
    cp.failuresLeft = 2;
    const shipper = makeShipper({ spool, transport: cp, timers: new ManualTimers(1e9), batchSize: 4 });
    const events = Array.from({ length: 10 }, () => makeEvent());
    await spool.append(events);
    const raw = await spool.readUnackedSpooled(100);
    shipper.start();
    expect(await shipper.flush(NEVER)).toEqual({ drained: true, pendingEvents: 0 });
    expect(cp.storedIds()).toEqual(ids(events));
    expect(cp.received).toEqual(events);
    // Exactly the bytes the spool holds, each id first.
    expect(cp.raw.map((b) => b.toString('utf8'))).toEqual(raw.map((e) => e.json.toString('utf8')));
    for (const [i, b] of cp.raw.entries()) expect(b.toString('utf8').startsWith(`{"id":"${events[i]?.id}"`)).toBe(true);
    expect(cp.calls.map((c) => c.length)).toEqual([4, 4, 4, 4, 2]);
  });

  it('re-sends a batch whose answer was lost; deduplicated by id, each event is stored once', async () => {
    const spool = await openSpool();
    const cp = new FakeControlPlane();
    cp.lostAnswersLeft = 2;
    const shipper = makeShipper({ spool, transport: cp, timers: new ManualTimers(1e9), batchSize: 4 });
    const events = Array.from({ length: 10 }, () => makeEvent());
    await spool.append(events);
    shipper.start();
    await shipper.flush(NEVER);
    expect(cp.received.length).toBeGreaterThan(10); // at least once…
    expect(cp.storedIds()).toEqual(ids(events)); // …and exactly once when deduplicated
  });

  it('takes partial and out-of-order acks, re-sends only what is missing, and frees the segments', async () => {
    const spool = await openSpool({ segmentBytes: 2000 });
    const cp = new FakeControlPlane();
    let round = 0;
    // Acknowledge every other event, last first; now and then nothing at all.
    cp.pickAcks = (batch) => {
      round += 1;
      if (round % 3 === 0) return [];
      return batch.filter((_, i) => (i + round) % 2 === 0).map((e) => e.id).reverse();
    };
    const shipper = makeShipper({ spool, transport: cp, timers: new ManualTimers(1e9), batchSize: 5 });
    const events = Array.from({ length: 23 }, () => makeEvent());
    await spool.append(events);
    shipper.start();
    const result = await shipper.flush(NEVER);

    expect(result.drained).toBe(true);
    expect(new Set(cp.storedIds())).toEqual(new Set(ids(events)));
    expect(shipper.stats().shippedEvents).toBe(23);
    expect(shipper.stats().failures).toBeGreaterThan(0); // the batches acknowledged with nothing
    // Every call sends the oldest unacked events first.
    for (const call of cp.calls) {
      const positions = call.map((e) => events.indexOf(e));
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
    }
    expect((await readdir(dir)).filter((n) => n.endsWith('.seg'))).toHaveLength(1); // only the active one
  });

  it('ignores acknowledged ids that were not in the batch', async () => {
    const spool = await openSpool();
    const cp = new FakeControlPlane();
    const stranger = makeEvent();
    await spool.append(stranger);
    let isFirst = true;
    cp.pickAcks = (batch) => {
      if (isFirst) {
        isFirst = false;
        return ['evt_00000000000000000000000000', batch[0]!.id];
      }
      return batch.map((e) => e.id);
    };
    const shipper = makeShipper({ spool, transport: cp, timers: new ManualTimers(1e9) });
    shipper.start();
    await shipper.flush(NEVER);
    expect(shipper.stats().shippedEvents).toBe(1);
  });

  it('wakes as soon as new events are durable', async () => {
    const spool = await openSpool();
    const cp = new FakeControlPlane();
    const timers = new ManualTimers(); // nothing fires unless the test says so
    const shipper = makeShipper({ spool, transport: cp, timers });
    shipper.start();
    const first = makeEvent();
    await spool.append(first);
    await cp.waitForStored(1);
    const more = [makeEvent(), makeEvent()];
    await spool.append(more);
    await cp.waitForStored(3);
    expect(cp.storedIds()).toEqual(ids([first, ...more]));
    expect(timers.requested.filter((ms) => ms < NEVER)).toEqual([]); // no polling, no backoff
  });

  it('times out a send that never answers and retries it', async () => {
    const spool = await openSpool();
    const cp = new FakeControlPlane();
    const timers = new ManualTimers();
    const { logger, lines } = createCaptureLogger('test');
    const shipper = makeShipper({ spool, transport: cp, timers, logger, sendTimeoutMs: 1000, initialBackoffMs: 100 });
    const event = makeEvent();
    await spool.append(event);
    cp.isHanging = true;
    shipper.start();
    await timers.waitForTimer((ms) => ms === 1000);
    cp.isHanging = false; // the next call answers; the first one is still hung
    timers.advance(1000);
    await timers.waitForTimer((ms) => ms === 75); // the backoff wait after the timeout
    timers.advance(75);
    await cp.waitForStored(1);
    expect(cp.calls).toHaveLength(2);
    expect(shipper.stats().failures).toBe(1);
    expect(lines.some((l) => l.includes('Audit shipping failed') && l.includes('did not answer'))).toBe(true);
    cp.unhang();
  });

  describe('flush', () => {
    it('commits events still waiting for their group window and ships them', async () => {
      const spoolTimers = new ManualTimers(); // the spool's group window never fires by itself
      const spool = await AuditSpool.open({ dir, groupCommitWindowMs: 60_000, timers: spoolTimers });
      spools.push(spool);
      const cp = new FakeControlPlane();
      const shipper = makeShipper({ spool, transport: cp, timers: new ManualTimers() });
      const events = [makeEvent(), makeEvent()];
      const appended = spool.append(events);
      expect(spool.stats().queuedEvents).toBe(2);
      const result = await shipper.flush(NEVER); // starts the loop itself
      await appended;
      expect(result).toEqual({ drained: true, pendingEvents: 0 });
      expect(cp.storedIds()).toEqual(ids(events));
    });

    it('cuts a long backoff wait short to try again at once', async () => {
      const spool = await openSpool();
      const cp = new FakeControlPlane();
      cp.failuresLeft = 1;
      const timers = new ManualTimers();
      const shipper = makeShipper({ spool, transport: cp, timers, initialBackoffMs: 60_000 });
      await spool.append(makeEvent());
      shipper.start();
      await timers.waitForTimer((ms) => ms === 45_000);
      const result = await shipper.flush(10_000);
      expect(result.drained).toBe(true);
      expect(cp.storedIds()).toHaveLength(1);
    });

    it('gives up at the deadline when the control plane does not answer; stop() does not hang; the events ship after a restart', async () => {
      const fs = new TestFs();
      const spool = await openSpool({ fs });
      const cp = new FakeControlPlane();
      cp.isHanging = true;
      const timers = new ManualTimers();
      const shipper = makeShipper({ spool, transport: cp, timers });
      const events = Array.from({ length: 5 }, () => makeEvent());
      await spool.append(events);

      const flushing = shipper.flush(5000);
      await cp.waitForCalls(1); // the send is in flight, and hangs
      timers.advance(5000);
      expect(await flushing).toEqual({ drained: false, pendingEvents: 5 });
      await shipper.stop();
      expect(shipper.stats().isRunning).toBe(false);
      await fs.crash(); // and the node goes away without closing the spool

      cp.unhang(); // the abandoned send's answer arrives late and is ignored
      await cp.waitForStored(5);
      const cp2 = new FakeControlPlane();
      const spool2 = await openSpool();
      expect(spool2.stats().pendingEvents).toBe(5);
      const shipper2 = makeShipper({ spool: spool2, transport: cp2, timers: new ManualTimers() });
      expect(await shipper2.flush(NEVER)).toEqual({ drained: true, pendingEvents: 0 });
      expect(cp2.storedIds()).toEqual(ids(events));
    });

    it('returns at once after stop()', async () => {
      const spool = await openSpool();
      const shipper = makeShipper({ spool, transport: new FakeControlPlane(), timers: new ManualTimers() });
      await spool.append(makeEvent());
      await shipper.stop();
      expect(await shipper.flush(NEVER)).toEqual({ drained: false, pendingEvents: 1 });
    });
  });

  it('ships what was left after a crash, and nothing acked before it again', async () => {
    const fs = new TestFs();
    const spool = await openSpool({ fs, segmentBytes: 1500 });
    const events = Array.from({ length: 20 }, () => makeEvent());
    await spool.append(events);
    const cp = new FakeControlPlane();
    let calls = 0;
    const original = cp.pickAcks;
    cp.pickAcks = (batch) => {
      calls += 1;
      if (calls === 2) cp.isDown = true; // the control plane goes away after the second batch
      return original(batch);
    };
    const timers = new ManualTimers();
    const shipper = makeShipper({ spool, transport: cp, timers, batchSize: 6 });
    shipper.start();
    // The second batch's ack has landed once the third send failed and its backoff wait began.
    await timers.waitForTimer((ms) => ms < NEVER);
    expect(cp.storedIds()).toHaveLength(12);
    await shipper.stop();
    await fs.crash();

    const spool2 = await openSpool();
    const cp2 = new FakeControlPlane();
    const shipper2 = makeShipper({ spool: spool2, transport: cp2, timers: new ManualTimers() });
    await shipper2.flush(NEVER);
    expect(cp2.storedIds()).toEqual(ids(events.slice(12)));
    expect([...cp.storedIds(), ...cp2.storedIds()]).toEqual(ids(events));
  });

  it('bounds the backoff: half fixed, half jittered, capped', () => {
    const spool = { readUnacked: jest.fn(), readUnackedSpooled: jest.fn(), ack: jest.fn(), onDurable: jest.fn(), settle: jest.fn(), stats: jest.fn() };
    const low = new AuditShipper({ spool, transport: new FakeControlPlane(), random: () => 0, initialBackoffMs: 200, maxBackoffMs: 5000 });
    const high = new AuditShipper({ spool, transport: new FakeControlPlane(), random: () => 0.999999, initialBackoffMs: 200, maxBackoffMs: 5000 });
    expect([1, 2, 3, 4, 5, 6, 20].map((n) => low.backoffDelay(n))).toEqual([100, 200, 400, 800, 1600, 2500, 2500]);
    expect([1, 2, 3, 4, 5, 6, 20].map((n) => Math.round(high.backoffDelay(n)))).toEqual([200, 400, 800, 1600, 3200, 5000, 5000]);
  });
});
