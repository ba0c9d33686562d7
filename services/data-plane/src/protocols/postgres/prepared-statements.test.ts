import { PreparedStatements } from './prepared-statements';
import type { StatementSummary } from './statement-audit';

const summary = (sql: string): StatementSummary => ({ sql } as StatementSummary);

describe('PreparedStatements', () => {
  it('remembers, replaces and forgets statements, bounded (oldest forgotten first)', () => {
    const p = new PreparedStatements(2);
    p.set('a', summary('1'));
    p.set('b', summary('2'));
    p.set('a', summary('3'));
    p.set('c', summary('4'));
    expect(p.get('b')).toBeUndefined();
    expect(p.get('a')?.sql).toBe('3');
    expect(p.size).toBe(2);
    p.delete('a');
    expect(p.get('a')).toBeUndefined();
  });

  it('is bounded by the characters of the texts it keeps', () => {
    const p = new PreparedStatements(100, 10);
    p.set('a', summary('12345'));
    p.set('b', summary('12345'));
    expect(p.get('a')).toBeUndefined();
    expect(p.get('b')?.sql).toBe('12345');
  });

  it('forgets every named statement after SQL PREPARE/DEALLOCATE/DISCARD, keeping the unnamed one', () => {
    const p = new PreparedStatements();
    p.set('', summary('unnamed'));
    p.set('s1', summary('named'));
    p.forgetNamed();
    expect(p.get('')?.sql).toBe('unnamed');
    expect(p.get('s1')).toBeUndefined();
  });
});
