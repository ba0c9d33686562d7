import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import fc from 'fast-check';
import { AppError, createCaptureLogger, ID_PATTERN } from '@pa/kit';
import { auditEventSchema } from './audit-event';
import { AuditRecorder, type AuditDecisionDraft, type AuditOutcomeDraft, type AuditSessionFields } from './audit-recorder';
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

/** A fresh directory per test, spools opened on it (closed after each test), and a recorder over each. */
const recorderFixture = () => {
  let path = '';
  let cleanup: () => Promise<void> = async () => undefined;
  const spools: AuditSpool[] = [];
  const timers = new ManualTimers(5); // the spool's 1 ms group window fires by itself
  beforeEach(async () => {
    ({ dir: path, cleanup } = await makeTempDir());
  });
  afterEach(async () => {
    await Promise.all(spools.splice(0).map((s) => s.close()));
    await cleanup();
  });
  const setup = async (options: Partial<AuditSpoolOptions> = {}) => {
    const { logger, lines } = createCaptureLogger('test');
    const spool = await AuditSpool.open({ dir: path, groupCommitWindowMs: 1, timers, logger, ...options });
    spools.push(spool);
    const recorder = new AuditRecorder({ spool, nodeId: 'node-7', timers, logger });
    return { spool, recorder, lines };
  };
  return { setup, dir: () => path };
};

describe('AuditRecorder', () => {
  const { setup, dir } = recorderFixture();

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
    const file = join(dir(), 'file');
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

describe('AuditRecorder.session (events written straight to JSON)', () => {
  const { setup, dir } = recorderFixture();
  const fields: AuditSessionFields = {
    actor: { id: 'usr_01hzzzzzzzzzzzzzzzzzzzzzzz', name: 'al"ice\\ \u2028' },
    connectionId: 'con_01hzzzzzzzzzzzzzzzzzzzzzzz',
    connectionName: 'orders-db',
    grantId: 'grt_01hzzzzzzzzzzzzzzzzzzzzzzz',
    sessionId: 'ses_01hzzzzzzzzzzzzzzzzzzzzzzz',
    protocol: 'postgres',
  };

  it('writes the same event a draft through decision() would, for any plain-JSON details', async () => {
    const { spool, recorder } = await setup();
    const hooks = recorder.session(fields, { tunnelId: 'tun_1' });
    const detailsArb = fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }) as fc.Arbitrary<Record<string, unknown>>;
    await fc.assert(
      fc.asyncProperty(detailsArb, fc.boolean(), async (details, asDecision) => {
        // fc.jsonValue may produce -0, which JSON writes as 0: compare with what JSON makes of it.
        const plain = JSON.parse(JSON.stringify(details)) as Record<string, unknown>;
        if (asDecision) await hooks.decision('sql.statement', 'denied', plain);
        else expect(await hooks.outcome('sql.result', 'failure', plain)).toBe(true);
        const [event] = await spool.readUnacked(1);
        // Valid by the contract's schema (which drops a `__proto__` key of details when it parses, so equality is checked below, on the JSON).
        expect(auditEventSchema.safeParse(event).success).toBe(true);
        const { id, time, ...rest } = event as NonNullable<typeof event>;
        expect(id).toMatch(ID_PATTERN);
        expect(time).toBe(new Date(time).toISOString());
        expect(rest).toEqual({
          nodeId: 'node-7',
          action: asDecision ? 'sql.statement' : 'sql.result',
          outcome: asDecision ? 'denied' : 'failure',
          ...fields,
          details: { tunnelId: 'tun_1', ...plain },
        });
        await spool.ack([id]);
      }),
      { numRuns: 200 },
    );
  });

  it('writes empty details, details without a prefix, and lets a details key override the prefix as a spread would', async () => {
    const { spool, recorder } = await setup();
    await recorder.session(fields).decision('tunnel.open', 'allowed', {});
    await recorder.session(fields, { tunnelId: 'tun_1' }).decision('tunnel.open', 'allowed', {});
    await recorder.session(fields).decision('tunnel.open', 'allowed', { a: 1 });
    await recorder.session(fields, { tunnelId: 'tun_1' }).decision('tunnel.open', 'allowed', { tunnelId: 'tun_2', b: [1] });
    const details = (await spool.readUnacked(10)).map((e) => e.details);
    expect(details).toEqual([{}, { tunnelId: 'tun_1' }, { a: 1 }, { tunnelId: 'tun_2', b: [1] }]);
  });

  it('refuses session fields that would make an invalid event, at once', async () => {
    const { recorder } = await setup();
    expect(() => recorder.session({ ...fields, protocol: 'ftp' as 'tcp' })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => recorder.session({ ...fields, actor: { ...fields.actor, role: 'x' } as AuditSessionFields['actor'] })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => recorder.session({ ...fields, grantId: 'g'.repeat(129) })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it('rejects a bad decision with VALIDATION_FAILED before touching the spool, and loses a bad outcome (counted, logged)', async () => {
    const { spool, recorder, lines } = await setup();
    const hooks = recorder.session(fields, { tunnelId: 'tun_1' });
    expect(await codeOf(hooks.decision('sql.statement', 'success' as 'allowed', {}))).toBe('VALIDATION_FAILED');
    expect(await codeOf(hooks.decision('SQL statement', 'allowed', {}))).toBe('VALIDATION_FAILED');
    expect(await codeOf(hooks.decision('sql.statement', 'allowed', { rows: undefined }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(hooks.decision('sql.statement', 'allowed', { at: new Date() }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(hooks.decision('sql.statement', 'allowed', { n: Number.NaN }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(hooks.decision('sql.statement', 'allowed', [] as unknown as Record<string, unknown>))).toBe('VALIDATION_FAILED');
    expect(await hooks.outcome('sql.result', 'allowed' as 'success', { sql: 'select secret_column' })).toBe(false);
    expect(await hooks.outcome('sql.result', 'success', { n: Number.POSITIVE_INFINITY, sql: 'select secret_column' })).toBe(false);
    expect(recorder.lostOutcomes).toBe(2);
    expect(spool.stats().pendingEvents).toBe(0);
    expect(lines.join('\n')).toContain('Audit outcome could not be recorded.');
    expect(lines.join('\n')).not.toContain('secret_column');
  });

  it('refuses an event larger than a record may be with VALIDATION_FAILED', async () => {
    const { spool, recorder } = await setup({ maxRecordBytes: 2048 });
    const hooks = recorder.session(fields);
    expect(await codeOf(hooks.decision('sql.statement', 'allowed', { sql: 'é'.repeat(1000) }))).toBe('VALIDATION_FAILED');
    expect(await hooks.outcome('sql.result', 'success', { sql: 'x'.repeat(4000) })).toBe(false);
    await hooks.decision('sql.statement', 'allowed', { sql: 'é'.repeat(100) });
    expect((await spool.readUnacked(10)).map((e) => e.details)).toEqual([{ sql: 'é'.repeat(100) }]);
  });

  it('refuses with AUDIT_SPOOL_FULL at the headroom and AUDIT_UNAVAILABLE on an unwritable spool, as decision() does', async () => {
    const one = encodeRecord(Buffer.from(JSON.stringify({ ...makeEvent(), ...fields, nodeId: 'node-7', details: {} }))).length;
    const { recorder } = await setup({ capacityBytes: one * 6, admissionHeadroomBytes: one * 3 + 1 });
    const hooks = recorder.session(fields);
    await hooks.decision('sql.statement', 'allowed', {});
    await hooks.decision('sql.statement', 'allowed', {});
    await hooks.decision('sql.statement', 'allowed', {});
    expect(hooks.canAccept()).toBe(false);
    expect(await codeOf(hooks.decision('sql.statement', 'allowed', {}))).toBe('AUDIT_SPOOL_FULL');
    expect(await hooks.outcome('sql.result', 'success', {})).toBe(true);

    const file = join(dir(), 'file');
    await writeFile(file, 'x');
    const broken = await setup({ dir: join(file, 'spool') });
    const brokenHooks = broken.recorder.session(fields);
    expect(brokenHooks.canAccept()).toBe(false);
    expect(await codeOf(brokenHooks.decision('sql.statement', 'allowed', {}))).toBe('AUDIT_UNAVAILABLE');
    expect(await brokenHooks.outcome('sql.result', 'success', {})).toBe(false);
    expect(broken.recorder.lostOutcomes).toBe(1);
  });

  it('keeps call order: an outcome not awaited lands before the decision that follows it', async () => {
    const { spool, recorder } = await setup();
    const hooks = recorder.session(fields);
    await hooks.decision('sql.statement', 'allowed', { n: 1 });
    const outcome = hooks.outcome('sql.result', 'success', { n: 1 });
    await hooks.decision('sql.statement', 'allowed', { n: 2 });
    expect(await outcome).toBe(true);
    expect((await spool.readUnacked(10)).map((e) => `${e.action}:${String(e.details.n)}`)).toEqual(['sql.statement:1', 'sql.result:1', 'sql.statement:2']);
  });
});
