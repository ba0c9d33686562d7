import { compilePolicy, createPolicyEngine, initPolicyEngine, type CompiledPolicy, type PolicyEngine } from '@pa/policy';
import { DecisionMemo } from './decision-memo';

describe('DecisionMemo', () => {
  let engine: PolicyEngine;
  let policy: CompiledPolicy;
  beforeAll(async () => {
    await initPolicyEngine();
    engine = createPolicyEngine();
    policy = compilePolicy({
      policies: [{ id: 'pol_1', version: 1, name: 'api', roles: ['r'], selector: { connections: ['c'] }, rules: [{ id: 'api', effect: 'allow', type: 'http', paths: ['/api/**'] }] }],
      roles: ['r'],
      connection: { name: 'c', tags: {}, protocol: 'http' },
    });
  });
  afterAll(() => engine.close());

  it('returns the engine decision, and the same one again for the same request', () => {
    const memo = new DecisionMemo();
    const a = memo.judge(engine, policy, { method: 'GET', target: '/api/./x' });
    expect(a).toEqual(engine.evaluateHttp(policy, { method: 'GET', target: '/api/./x' }));
    expect(a.target).toBe('/api/x');
    expect(memo.judge(engine, policy, { method: 'GET', target: '/api/./x' })).toBe(a);
    expect(memo.size).toBe(1);
  });

  it('keeps no denial, no header-judged request and no long target', () => {
    const memo = new DecisionMemo();
    expect(memo.judge(engine, policy, { method: 'GET', target: '/admin' }).allowed).toBe(false);
    expect(memo.judge(engine, policy, { method: 'GET', target: '/api/x', headers: { accept: ['a'] } }).allowed).toBe(true);
    expect(memo.judge(engine, policy, { method: 'GET', target: `/api/${'a'.repeat(600)}` }).allowed).toBe(true);
    expect(memo.size).toBe(0);
  });

  it('stays within its bound', () => {
    const memo = new DecisionMemo(3);
    for (let i = 0; i < 10; i += 1) memo.judge(engine, policy, { method: 'GET', target: `/api/${i}` });
    expect(memo.size).toBeLessThanOrEqual(3);
  });
});
