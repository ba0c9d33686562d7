import { auditEventProblem, auditEventSchema, isDecisionOutcome } from './audit-event';
import { makeEvent } from './audit-test-support';

describe('auditEventSchema', () => {
  it('accepts an event as handlers emit it, with or without a connection name', () => {
    expect(auditEventSchema.safeParse(makeEvent()).success).toBe(true);
    const { connectionName: _name, ...bare } = makeEvent();
    expect(auditEventSchema.safeParse(bare).success).toBe(true);
    expect(auditEventSchema.safeParse(makeEvent({ protocol: 'http', action: 'http.response', outcome: 'success', details: { status: 200, headers: { 'user-agent': 'curl' } } })).success).toBe(true);
  });

  it.each([
    ['an id that is not an evt_ id', { id: 'usr_01hzzzzzzzzzzzzzzzzzzzzzzz' }],
    ['a time that is not ISO 8601', { time: 'yesterday' }],
    ['an empty node id', { nodeId: '' }],
    ['an action that is not dotted lowercase', { action: 'SQL' }],
    ['an unknown outcome', { outcome: 'maybe' }],
    ['an unknown protocol', { protocol: 'ftp' }],
    ['an unknown field', { extra: 1 }],
    ['details that are not JSON (undefined)', { details: { a: undefined } }],
    ['details that are not JSON (Date)', { details: { at: new Date() } }],
    ['details that are not JSON (bigint)', { details: { n: 1n } }],
    ['details that are not JSON (NaN)', { details: { n: Number.NaN } }],
    ['details that are not JSON (a function)', { details: { f: () => 1 } }],
    ['details that are not an object', { details: [1, 2] }],
    ['an actor with an unknown field', { actor: { id: 'usr_x', name: 'a', role: 'x' } }],
    ['a connection name over 256 characters', { connectionName: 'x'.repeat(257) }],
  ])('rejects %s (schema and the fast check alike)', (_label, patch) => {
    expect(auditEventSchema.safeParse({ ...makeEvent(), ...patch }).success).toBe(false);
    expect(auditEventProblem({ ...makeEvent(), ...patch })).toEqual(expect.any(String));
  });

  it('the fast check accepts what handlers emit', () => {
    expect(auditEventProblem(makeEvent())).toBeUndefined();
    const { connectionName: _name, ...bare } = makeEvent();
    expect(auditEventProblem(bare)).toBeUndefined();
    expect(auditEventProblem(makeEvent({ details: { sql: 'SELECT 1', nested: [{ a: null, b: true, c: 1.5, d: ['x'] }], empty: {} } }))).toBeUndefined();
  });

  it('the fast check never accepts an event the schema rejects (random mutations)', () => {
    // Deterministic pseudo-random mutations of a valid event, field by field.
    let seed = 42;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const values: unknown[] = ['', 'x', 'evt_01hzzzzzzzzzzzzzzzzzzzzzzz', 'a.b', 'A.b', '2026-11-24T03:00:00.000Z', '2026-13-01T00:00:00Z', '2026-11-24T03:00:00+01:00', 'x'.repeat(129), 'x'.repeat(300), 0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, null, undefined, true, [], {}, { id: 'u', name: 'n' }, { id: 1, name: 'n' }, new Date(0), 1n, ['a', { b: undefined }], { a: { b: { c: Number.NaN } } }, 'allowed', 'denied', 'success', 'postgres', 'ftp'];
    const fields = ['id', 'time', 'nodeId', 'action', 'outcome', 'actor', 'connectionId', 'connectionName', 'grantId', 'sessionId', 'protocol', 'details', 'extra'];
    let accepted = 0;
    for (let i = 0; i < 5_000; i += 1) {
      const e: Record<string, unknown> = { ...makeEvent() };
      const n = 1 + Math.floor(rnd() * 3);
      for (let k = 0; k < n; k += 1) {
        const f = fields[Math.floor(rnd() * fields.length)] as string;
        const v = values[Math.floor(rnd() * values.length)];
        if (f === 'details' && rnd() < 0.5) e.details = { k: v };
        else e[f] = v;
      }
      if (auditEventProblem(e) === undefined) {
        accepted += 1;
        expect(auditEventSchema.safeParse(e).success).toBe(true);
      }
    }
    expect(accepted).toBeGreaterThan(100);
  });

  it('tells decision outcomes from result outcomes', () => {
    expect(['allowed', 'denied', 'success', 'failure', 'error'].map((o) => isDecisionOutcome(o as never))).toEqual([true, true, false, false, false]);
  });
});
