import { createPolicyEngine, type PolicyEngine } from './engine';
import { initPolicyEngine } from './sql/parse';
import { corpusPolicy } from './corpus/fixtures';
import { HTTP_CASES } from './corpus/http-cases';
import { CORPUS_POLICIES, type CorpusPolicyName } from './corpus/policies';
import { SQL_CASES } from './corpus/sql-cases';

let engine: PolicyEngine;
beforeAll(async () => {
  await initPolicyEngine();
  // No cache: every case is judged from its parse tree.
  engine = createPolicyEngine({ cache: false });
});
afterAll(() => engine.close());

const entries = <K extends string, V>(r: Partial<Record<K, V>>): Array<[K, V]> => Object.entries(r) as Array<[K, V]>;
const show = (s: string): string => JSON.stringify(s.length > 90 ? `${s.slice(0, 87)}...` : s);

const sqlRows = SQL_CASES.flatMap((c) => entries(c.expect).map(([policy, verdict]) => ({ c, policy, verdict })));
const httpRows = HTTP_CASES.flatMap((c) => entries(c.expect).map(([policy, verdict]) => ({ c, policy, verdict })));

describe('SQL corpus: decisions', () => {
  test.each(sqlRows.map((r) => [`${r.c.class} | ${r.policy} → ${r.verdict} | ${show(r.c.sql)}`, r] as const))('%s', (_name, { c, policy, verdict }) => {
    const d = engine.evaluateSql(corpusPolicy(policy), c.sql);
    expect({ allowed: d.allowed, reason: d.reason }).toEqual({ allowed: verdict === 'allow', reason: expect.any(String) });
    if (!d.allowed && c.reason !== undefined) expect(d.reason).toContain(c.reason);
    if (d.allowed) {
      expect(d.statements.every((s) => s.allowed)).toBe(true);
      if (d.statements.length > 0) expect(d.rule?.policyName).toBe(policy);
    } else if (d.rule) {
      expect(d.rule.policyName).toBe(policy);
    }
  });
});

describe('SQL corpus: what the engine sees', () => {
  const any = corpusPolicy;
  test.each(SQL_CASES.map((c) => [`${c.class} | ${show(c.sql)}`, c] as const))('%s', (_name, c) => {
    const d = engine.evaluateSql(any('all'), c.sql);
    if (c.kinds === undefined) {
      expect(d.failure).toBeDefined();
      expect(d.statements).toEqual([]);
      return;
    }
    expect(d.failure).toBeUndefined();
    expect(d.statements.map((s) => s.kind)).toEqual(c.kinds);
    if (c.does) expect(d.statements.map((s) => [...s.kinds].sort())).toEqual(c.does.map((k) => [...k].sort()));
    if (c.relations) expect(d.statements.map((s) => s.relations)).toEqual(c.relations);
    if (c.functions) expect(d.statements.map((s) => s.functions)).toEqual(c.functions);
    if (c.settings) expect(d.statements.map((s) => s.settings)).toEqual(c.settings);
    for (const s of d.statements) expect(s.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('HTTP corpus', () => {
  test.each(httpRows.map((r) => [`${r.c.class} | ${r.policy} → ${r.verdict} | ${r.c.method} ${show(r.c.target)}`, r] as const))('%s', (_name, { c, policy, verdict }) => {
    const d = engine.evaluateHttp(corpusPolicy(policy), { method: c.method, target: c.target, headers: c.headers ?? {} });
    expect({ allowed: d.allowed, target: d.target }).toEqual({ allowed: verdict === 'allow', target: c.normalized });
    if (!d.allowed && c.reason !== undefined) expect(d.reason).toContain(c.reason);
  });
});

describe('corpus coverage', () => {
  const classes = new Set([...SQL_CASES, ...HTTP_CASES].map((c) => c.class));
  test.each([
    'bypass:multi-statement', 'bypass:comments', 'bypass:dollar-quotes', 'bypass:strings', 'bypass:identifiers', 'bypass:dml-cte',
    'bypass:cte-scope', 'bypass:nesting', 'bypass:explain-analyze', 'bypass:copy', 'bypass:copy-program', 'bypass:copy-file',
    'bypass:select-into', 'bypass:functions', 'bypass:do', 'bypass:set', 'bypass:prepare', 'bypass:unqualified', 'transaction',
    'parse-error', 'fingerprint', 'pattern', 'bypass:dot-segments', 'bypass:double-slash', 'bypass:encoding', 'bypass:absolute-form',
    'glob', 'regex', 'query', 'header', 'method',
  ])('the corpus covers %s', (cls) => {
    expect(classes.has(cls)).toBe(true);
  });

  test('every corpus policy is used and every rule of every policy decides at least one case', () => {
    const used = new Map<CorpusPolicyName, Set<string>>();
    for (const { c, policy } of sqlRows) {
      const d = engine.evaluateSql(corpusPolicy(policy), c.sql);
      const ids = used.get(policy) ?? new Set<string>();
      for (const s of d.statements) if (s.rule) ids.add(s.rule.ruleId);
      used.set(policy, ids);
    }
    for (const { c, policy } of httpRows) {
      const d = engine.evaluateHttp(corpusPolicy(policy), { method: c.method, target: c.target, headers: c.headers ?? {} });
      const ids = used.get(policy) ?? new Set<string>();
      if (d.rule) ids.add(d.rule.ruleId);
      used.set(policy, ids);
    }
    const unused = (Object.keys(CORPUS_POLICIES) as CorpusPolicyName[]).flatMap((name) =>
      CORPUS_POLICIES[name].rules.map((r) => r.id).filter((id) => !used.get(name)?.has(id)).map((id) => `${name}.${id}`),
    );
    expect(unused).toEqual([]);
  });
});
