import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { AppError, createCaptureLogger, ID_PATTERN } from '@pa/kit';
import { AuditRecorder, type AuditDecisionDraft, type AuditOutcomeDraft } from './audit-recorder';
import { AuditSpool, type AuditSpoolOptions } from './audit-spool';
import { makeEvent, makeTempDir, ManualTimers, TestFs } from './audit-test-support';
import { encodeRecord } from './record-codec';

const base = (): Omit<AuditDecisionDraft, 'outcome' | 'action'> => {
  const { id: _id, time: _time, nodeId: _nodeId, outcome: _outcome, action: _action, ...rest } = makeEvent();
  return rest;
};
const decisionDraft = (overrides: Partial<AuditDecisionDraft> = {}): AuditDecisionDraft => ({
  ...base(),
  action: 'sql.statement',
  outcome: 'allowed',
  details: { sql: 'select secret_column from t' },
  ...overrides,
});
const outcomeDraft = (overrides: Partial<AuditOutcomeDraft> = {}): AuditOutcomeDraft => ({
  ...base(),
  action: 'sql.result',
  outcome: 'success',
  details: { rows: 3 },
  ...overrides,
});

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (err) {
    return err instanceof AppError ? err.code : `not an AppError: ${String(err)}`;
  }
  return 'resolved';
};

describe('AuditRecorder', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const spools: AuditSpool[] = [];
  const timers = new ManualTimers(5); // the spool's 1 ms group window fires by itself

  const setup = async (options: Partial<AuditSpoolOptions> = {}) => {
    const { logger, lines } = createCaptureLogger('test');
    const spool = await AuditSpool.open({ dir, groupCommitWindowMs: 1, timers, logger, ...options });
    spools.push(spool);
    const recorder = new AuditRecorder({ spool, nodeId: 'node-7', timers, logger });
    return { spool, recorder, lines };
  };

  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });

  afterEach(async () => {
    await Promise.all(spools.splice(0).map((s) => s.close()));
    await cleanup();
  });

  it('stamps id, time and node id, and returns the durable event', async () => {
    const { spool, recorder } = await setup();
    const event = await recorder.decision(decisionDraft());
    expect(event.id).toMatch(ID_PATTERN);
    expect(event.id.startsWith('evt_')).toBe(true);
    expect(event.time).toBe(new Date(event.time).toISOString());
    expect(event.nodeId).toBe('node-7');
    expect(await spool.readUnacked(10)).toEqual([event]);
  });

  it('keeps an id and time the handler chose', async () => {
    const { recorder } = await setup();
    const given = makeEvent();
    const event = await recorder.decision(decisionDraft({ id: given.id, time: given.time }));
    expect([event.id, event.time]).toEqual([given.id, given.time]);
  });

  it('resolves a decision only once it is fsynced', async () => {
    const fs = new TestFs();
    const { recorder } = await setup({ fs });
    fs.hold();
    let isAllowedToRun = false;
    const deciding = recorder.decision(decisionDraft()).then(() => {
      isAllowedToRun = true;
    });
    await fs.waitForHeld(1);
    expect(isAllowedToRun).toBe(false);
    fs.release();
    await deciding;
    expect(isAllowedToRun).toBe(true);
  });

  it('refuses a decision with AUDIT_SPOOL_FULL when only the headroom is left, but still records outcomes into it', async () => {
    const size = encodeRecord(Buffer.from(JSON.stringify({ ...makeEvent(), ...decisionDraft(), nodeId: 'node-7' }))).length;
    const { spool, recorder } = await setup({ capacityBytes: size * 6, admissionHeadroomBytes: size * 3 + 1 });
    await recorder.decision(decisionDraft());
    await recorder.decision(decisionDraft());
    await recorder.decision(decisionDraft());
    expect(recorder.canAccept()).toBe(false);
    const before = spool.stats().pendingEvents;
    expect(await codeOf(recorder.decision(decisionDraft()))).toBe('AUDIT_SPOOL_FULL');
    expect(spool.stats().pendingEvents).toBe(before); // refused before touching the spool
    expect(await recorder.outcome(outcomeDraft())).toBe(true);
    expect(recorder.lostOutcomes).toBe(0);
  });

  it('refuses decisions with AUDIT_UNAVAILABLE and loses outcomes (logged, never thrown) when the spool is unwritable', async () => {
    const file = join(dir, 'file');
    await writeFile(file, 'x');
    const { recorder, lines } = await setup({ dir: join(file, 'spool') });
    expect(recorder.canAccept()).toBe(false);
    expect(await codeOf(recorder.decision(decisionDraft()))).toBe('AUDIT_UNAVAILABLE');
    expect(await recorder.outcome(outcomeDraft({ details: { sql: 'select secret_column from t' } }))).toBe(false);
    expect(recorder.lostOutcomes).toBe(1);
    const logged = lines.join('\n');
    expect(logged).toContain('Audit outcome could not be recorded.');
    expect(logged).toContain('AUDIT_UNAVAILABLE');
    expect(logged).not.toContain('secret_column');
  });

  it('puts an outcome that was not awaited before the decision that follows it', async () => {
    const { spool, recorder } = await setup();
    const first = await recorder.decision(decisionDraft());
    const outcome = recorder.outcome(outcomeDraft()); // fire and forget on the hot path
    const next = await recorder.decision(decisionDraft());
    expect(await outcome).toBe(true);
    const order = (await spool.readUnacked(10)).map((e) => e.action);
    expect(order).toEqual(['sql.statement', 'sql.result', 'sql.statement']);
    expect((await spool.readUnacked(10)).map((e) => e.id)).toContain(next.id);
    expect((await spool.readUnacked(10))[0]?.id).toBe(first.id);
  });

  it('rejects a decision that is not allowed/denied, and an invalid event, with VALIDATION_FAILED', async () => {
    const { recorder } = await setup();
    const wrong = { ...decisionDraft(), outcome: 'success' } as unknown as AuditDecisionDraft;
    expect(await codeOf(recorder.decision(wrong))).toBe('VALIDATION_FAILED');
    expect(await codeOf(recorder.decision(decisionDraft({ details: { rows: undefined } })))).toBe('VALIDATION_FAILED');
    const wrongOutcome = { ...outcomeDraft(), outcome: 'allowed' } as unknown as AuditOutcomeDraft;
    expect(await recorder.outcome(wrongOutcome)).toBe(false);
  });

  it('records denials as decisions', async () => {
    const { spool, recorder } = await setup();
    await recorder.decision(decisionDraft({ action: 'tunnel.denied', outcome: 'denied', grantId: '', sessionId: '', actor: { id: '', name: '' } }));
    expect((await spool.readUnacked(1))[0]).toMatchObject({ action: 'tunnel.denied', outcome: 'denied' });
  });

  it('needs a spool and a node id', async () => {
    const { spool } = await setup();
    expect(() => new AuditRecorder({ spool, nodeId: '' })).toThrow(TypeError);
  });
});
