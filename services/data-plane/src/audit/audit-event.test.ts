import { auditEventSchema, isDecisionOutcome } from './audit-event';
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
  ])('rejects %s', (_label, patch) => {
    expect(auditEventSchema.safeParse({ ...makeEvent(), ...patch }).success).toBe(false);
  });

  it('tells decision outcomes from result outcomes', () => {
    expect(['allowed', 'denied', 'success', 'failure', 'error'].map((o) => isDecisionOutcome(o as never))).toEqual([true, true, false, false, false]);
  });
});
