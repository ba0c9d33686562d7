import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compilePolicy, type CompiledPolicy } from './compile';
import { corpusPolicy } from './corpus/fixtures';
import { CORPUS_POLICIES, type CorpusPolicyName } from './corpus/policies';
import { SQL_CASES } from './corpus/sql-cases';
import { createPolicyEngine, decisionOrigin, type PolicyEngine, type SqlDecision } from './engine';
import type { Rule } from './schema';
import { initPolicyEngine } from './sql/parse';
import { shapeSql } from './sql/shape';

const compile = (rules: Rule[], searchPath?: string[]): CompiledPolicy =>
  compilePolicy({
    roles: ['dev'],
    connection: { name: 'c1', tags: {}, protocol: 'postgres', ...(searchPath ? { searchPath } : {}) },
    policies: [{ id: 'pol_s', version: 1, name: 'shapes', roles: ['dev'], selector: { match: 'all', tags: {}, connections: ['c1'] }, rules }],
  });

const pgbench = compile(
  [
    { id: 'dml', effect: 'allow', type: 'sql', kinds: ['select', 'insert', 'update', 'delete', 'lock'], relations: ['public.*'] },
    { id: 'explain', effect: 'allow', type: 'sql', kinds: ['explain', 'select'], relations: ['public.*'] },
    { id: 'settings', effect: 'allow', type: 'sql', kinds: ['set', 'show'], settings: ['*'] },
    { id: 'no-secrets', effect: 'deny', type: 'sql', relations: ['secret.*'] },
  ],
  ['public'],
);

// Shape cache on, exact cache on (as in production), and a reference engine that judges every text from its parse tree.
let shaped: PolicyEngine;
let fresh: PolicyEngine;
beforeAll(async () => {
  await initPolicyEngine();
  shaped = createPolicyEngine({ limits: { parseTimeoutMs: 60_000 } });
  fresh = createPolicyEngine({ cache: false, limits: { parseTimeoutMs: 60_000 } });
});
afterAll(async () => {
  await shaped.close();
  await fresh.close();
});

/** Whether `d` is `seed`'s decision re-texted (a shape hit shares the statement's frozen arrays). */
const reused = (d: SqlDecision, seed: SqlDecision): boolean =>
  d.statements.length === 1 && seed.statements.length === 1 && d.statements[0]?.kinds === seed.statements[0]?.kinds;

/** Judges `first`, then `second` on a new engine; returns both decisions. */
const pair = (policy: CompiledPolicy, first: string, second: string): [SqlDecision, SqlDecision] => {
  const e = createPolicyEngine({ limits: { parseTimeoutMs: 60_000 } });
  const a = e.evaluateSql(policy, first);
  return [a, e.evaluateSql(policy, second)];
};

describe('shape cache', () => {
  test('pgbench: a new literal each time is judged from the first text’s decision, with its own statement text', () => {
    const e = createPolicyEngine();
    const first = e.evaluateSql(pgbench, 'SELECT abalance FROM pgbench_accounts WHERE aid = 12345;');
    expect(first).toMatchObject({ allowed: true, statements: [{ text: 'SELECT abalance FROM pgbench_accounts WHERE aid = 12345' }] });
    for (const aid of [1, 0, 999_999_999, 42, 7]) {
      const sql = `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`;
      const d = e.evaluateSql(pgbench, sql);
      expect(reused(d, first)).toBe(true);
      expect(Object.isFrozen(d) && Object.isFrozen(d.statements) && Object.isFrozen(d.statements[0])).toBe(true);
      expect(d).toEqual(fresh.evaluateSql(pgbench, sql));
      expect(d.statements[0]?.text).toBe(`SELECT abalance FROM pgbench_accounts WHERE aid = ${aid}`);
    }
  });

  test('decisionOrigin names the shape decision a text’s decision was copied from (itself when not copied)', () => {
    const e = createPolicyEngine();
    const first = e.evaluateSql(pgbench, 'SELECT abalance FROM pgbench_accounts WHERE aid = 5;');
    const copy = e.evaluateSql(pgbench, 'SELECT abalance FROM pgbench_accounts WHERE aid = 6;');
    expect(copy).not.toBe(first);
    expect(decisionOrigin(copy)).toBe(first);
    expect(decisionOrigin(first)).toBe(first);
    const { statements: _s, ...facts } = copy;
    const { statements: _f, ...originFacts } = first;
    expect(facts).toEqual(originFacts);
    const unshaped = e.evaluateSql(pgbench, 'SHOW search_path');
    expect(decisionOrigin(unshaped)).toBe(unshaped);
  });

  test('the async path (inline texts) uses it too', async () => {
    const e = createPolicyEngine();
    const first = await e.evaluateSqlAsync(pgbench, 'UPDATE pgbench_accounts SET abalance = abalance + -4321 WHERE aid = 17;');
    const d = await e.evaluateSqlAsync(pgbench, 'UPDATE pgbench_accounts SET abalance = abalance + -12 WHERE aid = 99;');
    expect(reused(d, first)).toBe(true);
    expect(d).toEqual(fresh.evaluateSql(pgbench, 'UPDATE pgbench_accounts SET abalance = abalance + -12 WHERE aid = 99;'));
    await e.close();
  });

  test('a denied shape stays denied for other literals', () => {
    const [a, b] = pair(pgbench, 'SELECT * FROM secret.keys WHERE id = 1', 'SELECT * FROM secret.keys WHERE id = 2');
    expect(a).toMatchObject({ allowed: false, rule: { ruleId: 'no-secrets' } });
    expect(reused(b, a)).toBe(true);
    expect(b).toMatchObject({ allowed: false, rule: { ruleId: 'no-secrets' }, statements: [{ text: 'SELECT * FROM secret.keys WHERE id = 2' }] });
  });

  test('SET standard_conforming_strings = 0 and = 1 are judged separately (one is refused)', () => {
    for (const [x, y] of [['1', '0'], ['0', '1']]) {
      const [a, b] = pair(pgbench, `SET standard_conforming_strings = ${x}`, `SET standard_conforming_strings = ${y}`);
      expect(reused(b, a)).toBe(false);
      expect(a).toEqual(fresh.evaluateSql(pgbench, `SET standard_conforming_strings = ${x}`));
      expect(b).toEqual(fresh.evaluateSql(pgbench, `SET standard_conforming_strings = ${y}`));
    }
    expect(fresh.evaluateSql(pgbench, 'SET standard_conforming_strings = 0')).toMatchObject({ allowed: false, reason: expect.stringContaining('cannot be turned off') });
    expect(fresh.evaluateSql(pgbench, 'SET standard_conforming_strings = 1').allowed).toBe(true);
  });

  test('EXPLAIN (ANALYZE 0) and (ANALYZE 1) are judged separately', () => {
    for (const [x, y] of [['0', '1'], ['1', '0']]) {
      const [a, b] = pair(pgbench, `EXPLAIN (ANALYZE ${x}) DELETE FROM public.t WHERE id = 5`, `EXPLAIN (ANALYZE ${y}) DELETE FROM public.t WHERE id = 5`);
      expect(reused(b, a)).toBe(false);
      expect(b).toEqual(fresh.evaluateSql(pgbench, `EXPLAIN (ANALYZE ${y}) DELETE FROM public.t WHERE id = 5`));
    }
  });

  test('sequence functions: the constant names the relation, so nextval(16384) is never reused for nextval(16385)', () => {
    const [a, b] = pair(pgbench, 'SELECT nextval(16384)', 'SELECT nextval(16385)');
    expect(reused(b, a)).toBe(false);
    expect(a.statements[0]?.relations).toEqual(['"16384"']);
    expect(b.statements[0]?.relations).toEqual(['"16385"']);
    const [c, d] = pair(pgbench, "SELECT set_config('a.b', 1, false)", "SELECT set_config('a.b', 2, false)");
    expect(reused(d, c)).toBe(false);
  });

  test('a policy with a pattern rule never uses the shape cache (its regex sees the constants)', () => {
    const policy = compile([{ id: 'only-one', effect: 'allow', type: 'sql', kinds: ['select'], pattern: '= 1$' }]);
    const [a, b] = pair(policy, 'SELECT x FROM t WHERE id = 1', 'SELECT x FROM t WHERE id = 2');
    expect([a.allowed, b.allowed]).toEqual([true, false]);
    expect(reused(b, a)).toBe(false);
  });

  test('fingerprint rules: reused only where the fingerprint cannot change (current_timestamp(p) is not a constant)', () => {
    const policy = compile([{ id: 'fp', effect: 'allow', type: 'sql', fingerprints: [fresh.evaluateSql(pgbench, 'SELECT current_timestamp(3), 1').statements[0]?.fingerprint as string] }]);
    const [a, b] = pair(policy, 'SELECT current_timestamp(3), 1', 'SELECT current_timestamp(4), 1');
    expect([a.allowed, b.allowed]).toEqual([true, false]);
    expect(reused(b, a)).toBe(false);
    // The whole text is never stored under its shape: the lexer replaced the 3, which is no constant node.
    const [c, d] = pair(policy, 'SELECT current_timestamp(3), 1', 'SELECT current_timestamp(3), 2');
    expect([c.allowed, d.allowed]).toEqual([true, true]);
    expect(reused(d, c)).toBe(false);
    const [g, h] = pair(policy, 'SELECT 1, 2', 'SELECT 3, 4');
    expect(reused(h, g)).toBe(true);
  });

  test('digits the grammar reads as more than a value are never reused: float(p), array bounds, over-long integers', () => {
    const [a, b] = pair(pgbench, 'SELECT 1::float(24)', 'SELECT 1::float(0)');
    expect(a.allowed).toBe(true);
    expect(b).toMatchObject({ allowed: false, failure: 'parse_error' });
    const [c, d] = pair(pgbench, 'SELECT 1::int[3]', 'SELECT 1::int[99999]');
    expect(reused(d, c)).toBe(false);
    const [e, f] = pair(pgbench, 'SELECT 1::int[3]', 'SELECT 1::int[1.5]');
    expect(f.failure).toBe('parse_error');
    expect(reused(f, e)).toBe(false);
  });

  test('multi-statement texts are not shape-cached', () => {
    const [a, b] = pair(pgbench, 'SELECT 1; SELECT 2', 'SELECT 3; SELECT 4');
    expect(b.statements[0]?.kinds).not.toBe(a.statements[0]?.kinds);
    expect(b).toEqual(fresh.evaluateSql(pgbench, 'SELECT 3; SELECT 4'));
  });

  test('the size cap applies to the new text, not the cached one', () => {
    const e = createPolicyEngine({ limits: { maxBytes: 30 } });
    expect(e.evaluateSql(pgbench, 'SELECT x FROM t WHERE a = 1').allowed).toBe(true);
    expect(e.evaluateSql(pgbench, 'SELECT x FROM t WHERE a = 1234567')).toMatchObject({ allowed: false, failure: 'too_large' });
  });

  test('statement texts are re-derived: leading comments, trailing semicolons and comments, non-ASCII text', () => {
    for (const [x, y] of [
      ['/* app=1 */ SELECT 5 FROM t;', '/* app=1 */ SELECT 123 FROM t;'],
      ['  SELECT 5 FROM t ;  ', '  SELECT 123 FROM t ;  '],
      ['SELECT 5 FROM t -- note 1', 'SELECT 123 FROM t -- note 1'],
      ["SELECT 'é✓𝄞', 5 FROM t WHERE a = 1.5", "SELECT 'é✓𝄞', 123 FROM t WHERE a = 22.75"],
      ['SELECT -5, - 6.5, 7 FROM t', 'SELECT -123, - 0.0, 0 FROM t'],
    ]) {
      const [a, b] = pair(pgbench, x as string, y as string);
      expect(reused(b, a)).toBe(true);
      expect(b).toEqual(fresh.evaluateSql(pgbench, y as string));
    }
  });

  test('shapeCache: false turns it off', () => {
    const e = createPolicyEngine({ shapeCache: false });
    const a = e.evaluateSql(pgbench, 'SELECT x FROM t WHERE a = 1');
    expect(reused(e.evaluateSql(pgbench, 'SELECT x FROM t WHERE a = 2'), a)).toBe(false);
  });
});

describe('shape cache: tripwire', () => {
  test('the analyser reads constant values in exactly the places shapeEligibleFacts excludes', () => {
    // explainAnalyzes (EXPLAIN: kind explain), visitVariableSet (SET: kind set, settings),
    // visitFuncCall (nextval/currval/setval/set_config/current_setting). A new reader of
    // constants must be excluded in shape-cache.ts before this count is raised.
    const source = readFileSync(join(__dirname, 'sql', 'analyze.ts'), 'utf8');
    expect(source.match(/constantText\b/g)?.length).toBe(4);
    expect(source.match(/\b(ival|fval)\b/g)?.length).toBe(6); // all inside constantText
  });
});

/** A seeded PRNG (mulberry32): the differential test is reproducible. */
const prng = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

const EXTRA_SQL = [
  'SELECT abalance FROM pgbench_accounts WHERE aid = 12345;',
  'UPDATE pgbench_accounts SET abalance = abalance + -4321 WHERE aid = 12345;',
  'UPDATE pgbench_tellers SET tbalance = tbalance + 17 WHERE tid = 3;',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 12345, -4321, CURRENT_TIMESTAMP);',
  'SELECT * FROM secret.keys WHERE id = 1',
  'SELECT * FROM public.accounts WHERE id = 1 FOR UPDATE',
  'SELECT x FROM public.t ORDER BY 1 LIMIT 10 OFFSET 20',
  'SELECT x FROM t FETCH FIRST 5 ROWS ONLY',
  'SELECT -5, - 6, +7, 8 - 9, 1.5, -2.25 FROM t',
  'SELECT a[1:2], a[3] FROM t',
  "SELECT 'x'::varchar(3), 1::numeric(10, 2), 1.5::float(53), interval '1' second(3)",
  'SELECT current_timestamp(3), localtime(2)',
  'SELECT 1::float(24)',
  'SELECT x::int[3] FROM t',
  'SELECT 99999999999, 5',
  'SELECT nextval(16384)',
  "SELECT set_config('app.x', 1, false)",
  'SELECT current_setting(1)',
  'SET standard_conforming_strings = 1',
  'SET statement_timeout = 5000',
  'EXPLAIN (ANALYZE 0) DELETE FROM t WHERE id = 1',
  '/* c 1 */ SELECT 1;',
  'SELECT 1; -- 2',
  "SELECT 'é', 5 FROM t WHERE a = 1.5",
  'WITH d AS (DELETE FROM t WHERE id = 3 RETURNING *) SELECT * FROM d LIMIT 2',
  'INSERT INTO t VALUES (1, 2) ON CONFLICT (a) DO UPDATE SET b = 3',
  'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = 1',
  'SELECT $1::int + 5 FROM t WHERE b = 6',
  'SELECT pg_sleep(1)',
  "SELECT lower('A') FROM public.t WHERE id = 2",
];

/** `sql` with each constant the lexer replaced swapped for a random one of the same class. */
const variant = (sql: string, rand: () => number): string | undefined => {
  const shape = shapeSql(sql);
  if (shape === undefined || shape.constants.length === 0) return undefined;
  const digits = (max: number): string => {
    const n = 1 + Math.floor(rand() * max);
    let s = '';
    for (let i = 0; i < n; i += 1) s += String(Math.floor(rand() * 10));
    return s;
  };
  let out = '';
  let at = 0;
  for (const c of shape.constants) {
    // Small values often (0, 1…: the edge cases of typmods and precisions), any 1–9 digits otherwise.
    const v = rand() < 0.3 ? String(Math.floor(rand() * 60)) : digits(9);
    out += sql.slice(at, c.start) + (c.decimal ? `${v}.${digits(4)}` : v);
    at = c.end;
  }
  return out + sql.slice(at);
};

describe('shape cache: differential test on the corpus', () => {
  const policies = (Object.keys(CORPUS_POLICIES) as CorpusPolicyName[]).filter((name) => CORPUS_POLICIES[name].protocol === 'postgres');
  const texts = [...new Set([...SQL_CASES.map((c) => c.sql), ...EXTRA_SQL])].filter((sql) => (shapeSql(sql)?.constants.length ?? 0) > 0);

  test('the corpus has texts with numeric constants', () => {
    expect(texts.length).toBeGreaterThan(40);
  });

  test('a decision through the shape cache equals a fresh evaluation, field for field', () => {
    const rand = prng(20_240_611);
    let hits = 0;
    let compared = 0;
    for (const name of policies) {
      const policy = corpusPolicy(name);
      for (const sql of texts) {
        // A new engine per text: the seed is the only entry its shape can have.
        const e = createPolicyEngine({ limits: { parseTimeoutMs: 60_000 } });
        const seed = e.evaluateSql(policy, sql);
        expect(seed).toEqual(fresh.evaluateSql(policy, sql));
        for (let k = 0; k < 6; k += 1) {
          const other = variant(sql, rand) as string;
          const viaShape = e.evaluateSql(policy, other);
          const reference = fresh.evaluateSql(policy, other);
          compared += 1;
          if (reused(viaShape, seed)) hits += 1;
          if (JSON.stringify(viaShape) !== JSON.stringify(reference)) {
            // Name the case in the failure.
            expect({ policy: name, seed: sql, sql: other, decision: viaShape }).toEqual({ policy: name, seed: sql, sql: other, decision: reference });
          }
        }
      }
    }
    // Not vacuous: most variants are answered from the shape cache.
    expect(hits).toBeGreaterThan(compared / 3);
  });
});
