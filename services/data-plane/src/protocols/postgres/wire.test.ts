import { AppError } from '@pa/kit';
import { abortReason, abortWords, parseMessage, poisonToken, policyDeniedError } from './wire';

describe('postgres handler wire helpers', () => {
  it('builds a Parse message byte for byte', () => {
    expect(parseMessage('s', 'x')).toEqual(Buffer.from([0x50, 0, 0, 0, 10, 0x73, 0, 0x78, 0, 0, 0]));
    expect(parseMessage('', 'é').readInt32BE(1)).toBe(4 + 1 + 3 + 2);
  });

  it('makes poison tokens that are lone identifiers (a raw-parser syntax error)', () => {
    expect(poisonToken('0a1b2c', 7)).toMatch(/^[a-z_][a-z0-9_]*$/);
    expect(poisonToken('0a1b2c', 7)).not.toBe(poisonToken('0a1b2c', 8));
  });

  it('names the rule in a denial and maps abort reasons', () => {
    const e = policyDeniedError('ddl on t: denied by rule "no-ddl" of policy "app"');
    expect(e.spec.sqlstate).toBe('42501');
    expect(e.message).toBe('permission denied by policy: ddl on t: denied by rule "no-ddl" of policy "app"');
    expect(abortWords(new AppError('GRANT_REVOKED'))).toBe('grant revoked');
    expect(abortReason(new AppError('GRANT_EXPIRED'))).toBe('grant_expired');
    expect(abortReason(new AppError('NOT_READY'))).toBe('draining');
    expect(abortReason('x')).toBe('aborted');
  });
});
