import { createHash } from 'node:crypto';
import { compilePolicy, createPolicyEngine, decisionOrigin, initPolicyEngine } from '@pa/policy';
import { capUtf8, hashParameters, MAX_AUDIT_SQL_BYTES, rowsOfTag, summarizeStatement } from './statement-audit';

describe('statement audit facts', () => {
  it('caps SQL text at a UTF-8 byte budget without splitting a character', () => {
    expect(capUtf8('SELECT 1', 100)).toEqual({ text: 'SELECT 1', bytes: 8, truncated: false });
    const r = capUtf8('é'.repeat(10), 5);
    expect(r).toEqual({ text: 'éé', bytes: 20, truncated: true });
    expect(capUtf8('a€'.repeat(2000), MAX_AUDIT_SQL_BYTES).text.length).toBeLessThanOrEqual(MAX_AUDIT_SQL_BYTES);
  });

  it('reads row counts from command tags', () => {
    expect(rowsOfTag('SELECT 12')).toBe(12);
    expect(rowsOfTag('INSERT 0 3')).toBe(3);
    expect(rowsOfTag('COPY 5000')).toBe(5000);
    expect(rowsOfTag('MERGE 2')).toBe(2);
    expect(rowsOfTag('BEGIN')).toBeNull();
    expect(rowsOfTag('CREATE TABLE')).toBeNull();
  });

  it('hashes parameters (NULL and empty distinct, order matters) and never stores them', () => {
    const a = hashParameters([Buffer.from('1'), null]);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(hashParameters([Buffer.from('1'), Buffer.alloc(0)])).not.toBe(a);
    expect(hashParameters([null, Buffer.from('1')])).not.toBe(a);
    expect(hashParameters([Buffer.from('1'), null])).toBe(a);
  });

  it('summarises a decision once per decision object: unions of kinds, relations, functions', async () => {
    await initPolicyEngine();
    const policy = compilePolicy({
      policies: [{ id: 'wl_1', version: 1, name: 'p', roles: ['r'], selector: { connections: ['c'] }, rules: [{ id: 'all', effect: 'allow', type: 'all' }] }],
      roles: ['r'],
      connection: { name: 'c', tags: {}, protocol: 'postgres' },
    });
    const engine = createPolicyEngine();
    const sql = 'SELECT lower(name) FROM accounts; INSERT INTO t SELECT * FROM accounts';
    const d = engine.evaluateSql(policy, sql);
    const s = summarizeStatement(sql, d);
    expect(s).toMatchObject({ sql, statements: 2, kinds: ['select', 'insert'], relations: ['accounts', 't'], functions: ['lower'], allowed: true, rule: { ruleId: 'all' } });
    expect(s.sqlSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(summarizeStatement(sql, d)).toBe(s);
    await engine.close();
  });

  it('summarises texts of one shape from one set of facts, each with its own text and hash', async () => {
    await initPolicyEngine();
    const policy = compilePolicy({
      policies: [{ id: 'wl_1', version: 1, name: 'p', roles: ['r'], selector: { connections: ['c'] }, rules: [{ id: 'all', effect: 'allow', type: 'all' }, { id: 'no-ddl', effect: 'deny', type: 'sql', kinds: ['ddl'] }] }],
      roles: ['r'],
      connection: { name: 'c', tags: {}, protocol: 'postgres' },
    });
    const engine = createPolicyEngine();
    const texts = ['SELECT abalance FROM pgbench_accounts WHERE aid = 17;', 'SELECT abalance FROM pgbench_accounts WHERE aid = 48211;'];
    const [a, b] = texts.map((sql) => ({ sql, d: engine.evaluateSql(policy, sql) }));
    if (!a || !b) throw new Error('two decisions expected');
    // The second text is answered from the first one's shape: another object, the same origin.
    expect(b.d).not.toBe(a.d);
    expect(decisionOrigin(b.d)).toBe(decisionOrigin(a.d));
    const [sa, sb] = [summarizeStatement(a.sql, a.d), summarizeStatement(b.sql, b.d)];
    for (const [s, sql] of [[sa, a.sql], [sb, b.sql]] as const) {
      expect(s).toMatchObject({ sql, sqlBytes: Buffer.byteLength(sql), statements: 1, kinds: ['select'], relations: ['pgbench_accounts'], allowed: true, rule: { ruleId: 'all' } });
      expect(s.sqlSha256).toBe(createHash('sha256').update(sql).digest('hex'));
    }
    expect(sb.kinds).toBe(sa.kinds); // the facts were derived once
    expect(sb.fingerprints).toEqual(sa.fingerprints);
    await engine.close();
  });
});
