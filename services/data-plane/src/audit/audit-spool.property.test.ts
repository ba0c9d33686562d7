import { appendFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import type { AuditEvent } from './audit-event';
import { AuditShipper } from './audit-shipper';
import { AuditSpool } from './audit-spool';
import { FakeControlPlane, makeEvent, makeTempDir, ManualTimers, TestFs } from './audit-test-support';

type Op =
  | { readonly t: 'append'; readonly n: number }
  | { readonly t: 'ack'; readonly picks: readonly number[] }
  | { readonly t: 'read'; readonly max: number }
  | { readonly t: 'restart'; readonly crash: boolean }
  | { readonly t: 'tear'; readonly junk: Uint8Array };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('append' as const), n: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('ack' as const), picks: fc.array(fc.nat(), { maxLength: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('read' as const), max: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('restart' as const), crash: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('tear' as const), junk: fc.uint8Array({ minLength: 1, maxLength: 40 }) }) },
);

describe.each(['durable', 'written'] as const)('AuditSpool (property, %s durability)', (durability) => {
  it('never loses an unacknowledged event, nor brings back an acknowledged one, across appends, acks, restarts (process crashes included) and torn tails', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
        const { dir, cleanup } = await makeTempDir();
        const options = { dir, groupCommitWindowMs: 0, segmentBytes: 1500, durability };
        // A `written` append resolves before its fsync: what the shipper reads and acks is durable.
        const settleIfWritten = async (): Promise<void> => {
          if (durability === 'written') await spool.settle();
        };
        let fs = new TestFs();
        let spool = await AuditSpool.open({ ...options, fs });
        // The model: unacknowledged events in append order.
        let unacked: AuditEvent[] = [];
        const restart = async (crash: boolean): Promise<void> => {
          if (crash) await fs.crash();
          else await spool.close();
          fs = new TestFs();
          spool = await AuditSpool.open({ ...options, fs });
        };
        try {
          for (const op of ops) {
            switch (op.t) {
              case 'append': {
                const events = Array.from({ length: op.n }, () => makeEvent());
                // Split into concurrent appends so groups form in different shapes.
                await Promise.all([spool.append(events.slice(0, 1)), spool.append(events.slice(1))]);
                unacked.push(...events);
                break;
              }
              case 'ack': {
                if (unacked.length === 0) break;
                await settleIfWritten();
                const chosen = new Set(op.picks.map((p) => (unacked[p % unacked.length] as AuditEvent).id));
                await spool.ack([...chosen].reverse());
                unacked = unacked.filter((e) => !chosen.has(e.id));
                break;
              }
              case 'read':
                await settleIfWritten();
                expect((await spool.readUnacked(op.max)).map((e) => e.id)).toEqual(unacked.slice(0, op.max).map((e) => e.id));
                break;
              case 'restart':
                await restart(op.crash);
                break;
              case 'tear': {
                // A crash in the middle of writing a group: junk after the last record.
                await fs.crash();
                const segs = (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
                const last = segs[segs.length - 1];
                if (last !== undefined) await appendFile(join(dir, last), op.junk);
                fs = new TestFs();
                spool = await AuditSpool.open({ ...options, fs });
                break;
              }
            }
            const stats = spool.stats();
            // A process crash keeps what was written: the events are in the file, only not fsynced.
            expect(durability === 'durable' ? stats.pendingEvents : stats.pendingEvents + stats.queuedEvents).toBe(unacked.length);
          }
          await settleIfWritten();
          expect(await spool.readUnacked(10_000)).toEqual(unacked);
          await restart(false);
          expect(await spool.readUnacked(10_000)).toEqual(unacked);
        } finally {
          await spool.close().catch(() => undefined);
          await cleanup();
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('AuditShipper (property)', () => {
  it('delivers every event, exactly once when deduplicated by id, whatever the control plane fails, loses or half-acknowledges', async () => {
    const behaviour = fc.constantFrom('ok', 'fail', 'lose-answer', 'ack-half', 'ack-none', 'ack-reversed');
    await fc.assert(
      fc.asyncProperty(
        fc.array(behaviour, { maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 8 }),
        async (script, appendSizes, batchSize) => {
          const { dir, cleanup } = await makeTempDir();
          const spool = await AuditSpool.open({ dir, groupCommitWindowMs: 0, segmentBytes: 1500 });
          const cp = new FakeControlPlane();
          let step = 0;
          const send = cp.send.bind(cp);
          // Each call follows the next line of the script, then behaves.
          cp.send = async (events) => {
            const how = script[step] ?? 'ok';
            step += 1;
            cp.failuresLeft = how === 'fail' ? 1 : 0;
            cp.lostAnswersLeft = how === 'lose-answer' ? 1 : 0;
            cp.pickAcks = (batch) => {
              const all = batch.map((e) => e.id);
              if (how === 'ack-half') return all.filter((_, i) => i % 2 === 1);
              if (how === 'ack-none') return [];
              if (how === 'ack-reversed') return all.reverse();
              return all;
            };
            return send(events);
          };
          const shipper = new AuditShipper({ spool, transport: cp, batchSize, timers: new ManualTimers(1e9), sendTimeoutMs: 1e12 });
          const appended: AuditEvent[] = [];
          try {
            shipper.start();
            for (const n of appendSizes) {
              const events = Array.from({ length: n }, () => makeEvent());
              await spool.append(events);
              appended.push(...events);
            }
            const result = await shipper.flush(1e12);
            expect(result).toEqual({ drained: true, pendingEvents: 0 });
            expect([...cp.storedIds()].sort()).toEqual(appended.map((e) => e.id).sort());
            expect(shipper.stats().shippedEvents).toBe(appended.length);
          } finally {
            await shipper.stop();
            await spool.close();
            await cleanup();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
