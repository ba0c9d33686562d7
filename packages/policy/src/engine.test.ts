import fc from 'fast-check';
import { AppError } from '@pa/kit';
import { compilePolicy, loadCompiledPolicy, type CompiledPolicy } from './compile';
import { createPolicyEngine, evaluateSql, type PolicyEngine } from './engine';
import type { Rule } from './schema';
import { analyzeSqlText, initPolicyEngine } from './sql/parse';

const compile = (rules: Rule[], protocol: 'postgres' | 'http' | 'tcp' = 'postgres', searchPath?: string[]): CompiledPolicy =>
  compilePolicy({
    roles: ['dev'],
    connection: { name: 'c1', tags: {}, protocol, ...(searchPath ? { searchPath } : {}) },
    policies: [{ id: 'pol_a', version: 2, name: 'devs', roles: ['dev'], selector: { match: 'all', tags: {}, connections: ['c1'] }, rules }],
  });

const readPublic = compile([{ id: 'read', effect: 'allow', type: 'sql', kinds: ['select'], relations: ['public.*'] }], 'postgres', ['public']);

let engine: PolicyEngine;
beforeAll(async () => {
  await initPolicyEngine();
  // Generous budgets: CI runs many suites at once on two cores; budgets themselves are tested below.
  engine = createPolicyEngine({ cache: { maxEntries: 100 }, limits: { maxBytes: 2 * 1024 * 1024, parseTimeoutMs: 60_000, maxStatements: 20_000 }, pool: { startupTimeoutMs: 60_000, timeoutMs: 60_000 } });
});
afterAll(() => engine.close());

describe('evaluateSql', () => {
  test('never throws on arbitrary strings, and allowed means every statement was allowed', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('SELECT 1', "SELECT '", '$$', '/*', ';', 'SELECT * FROM t; DROP TABLE t')), (sql) => {
        const d = engine.evaluateSql(readPublic, sql);
        expect(typeof d.allowed).toBe('boolean');
        expect(Object.isFrozen(d)).toBe(true);
        if (d.allowed) expect(d.statements.every((s) => s.allowed)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  test('never throws on inputs that are not strings', () => {
    for (const input of [undefined, null, 42, {}, ['SELECT 1'], Symbol('x')]) {
      const d = engine.evaluateSql(readPublic, input as unknown as string);
      expect(d).toMatchObject({ allowed: false, failure: 'invalid_input' });
    }
  });

  test('repeated statements are served from the decision cache, keyed by policy hash', () => {
    const sql = 'SELECT id FROM public.accounts WHERE id = 7';
    const first = engine.evaluateSql(readPublic, sql);
    expect(engine.evaluateSql(readPublic, sql)).toBe(first);
    const other = compile([{ effect: 'deny', type: 'all' }]);
    const denied = engine.evaluateSql(other, sql);
    expect(denied).not.toBe(first);
    expect([first.allowed, denied.allowed]).toEqual([true, false]);
  });

  test('the decision names the deciding rule and records the per-statement breakdown', () => {
    const d = engine.evaluateSql(readPublic, "SELECT lower(name) FROM public.accounts a JOIN orders o ON o.a = a.id WHERE a.id = 3");
    expect(d).toMatchObject({
      allowed: true,
      rule: { policyId: 'pol_a', policyName: 'devs', ruleId: 'read' },
      policyHash: readPublic.hash,
      statements: [{ index: 0, kind: 'select', kinds: ['select'], relations: ['orders', 'public.accounts'], functions: ['lower'], settings: [], allowed: true }],
    });
    expect(d.statements[0]?.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  test('statement texts are sliced on UTF-8 byte offsets', () => {
    const d = engine.evaluateSql(readPublic, "SELECT 'héllo ✓' ; SELECT '𝄞' AS x");
    expect(d.statements.map((s) => s.text)).toEqual(["SELECT 'héllo ✓'", "SELECT '𝄞' AS x"]);
  });

  test('query text over the size cap is denied with a clear reason', () => {
    const small = createPolicyEngine({ limits: { maxBytes: 100 } });
    const d = small.evaluateSql(readPublic, `SELECT ${'1,'.repeat(60)}1`);
    expect(d).toMatchObject({ allowed: false, failure: 'too_large' });
    expect(d.reason).toContain('100 bytes');
    // Multi-byte characters count as bytes, not UTF-16 units.
    expect(small.evaluateSql(readPublic, `SELECT '${'é'.repeat(46)}'`).failure).toBe('too_large');
    expect(small.evaluateSql(readPublic, `SELECT '${'e'.repeat(46)}'`).failure).toBeUndefined();
  });

  test('more statements than maxStatements in one text is a denial', () => {
    const e = createPolicyEngine({ limits: { maxStatements: 3 }, cache: false });
    expect(e.evaluateSql(readPublic, 'SELECT 1; SELECT 2; SELECT 3').allowed).toBe(true);
    const d = e.evaluateSql(readPublic, 'SELECT 1; SELECT 2; SELECT 3; SELECT 4');
    expect(d).toMatchObject({ allowed: false, failure: 'too_large' });
    expect(d.reason).toContain('4 statements');
  });

  test('the synchronous path refuses texts above syncMaxBytes instead of blocking', () => {
    const e = createPolicyEngine({ limits: { syncMaxBytes: 64 } });
    const d = e.evaluateSql(readPublic, `SELECT ${'1,'.repeat(40)}1`);
    expect(d).toMatchObject({ allowed: false, failure: 'too_large' });
    expect(d.reason).toContain('evaluateSqlAsync');
  });

  test('a parse that runs over the time budget is a denial', () => {
    const e = createPolicyEngine({ limits: { parseTimeoutMs: 0 }, cache: false });
    const d = e.evaluateSql(readPublic, `SELECT * FROM public.t WHERE a IN (${Array.from({ length: 3000 }, (_, i) => i).join(',')})`);
    expect(d).toMatchObject({ allowed: false, failure: 'timeout' });
  });

  test('a compiled policy that was tampered with is never used', () => {
    const forged = JSON.parse(JSON.stringify(readPublic)) as { rules: Array<{ rule: { relations: string[] } }> };
    forged.rules[0]!.rule.relations = ['*'];
    const d = engine.evaluateSql(forged as unknown as CompiledPolicy, 'SELECT * FROM secret.keys');
    expect(d).toMatchObject({ allowed: false, failure: 'internal' });
    expect(d.reason).toContain('hash');
    expect(() => loadCompiledPolicy(forged)).toThrow(AppError);
  });

  test('a compiled policy survives a JSON round trip (as in a grant) with the same decisions', () => {
    const loaded = loadCompiledPolicy(JSON.parse(JSON.stringify(readPublic)));
    expect(loaded.hash).toBe(readPublic.hash);
    expect(Object.isFrozen(loaded.rules)).toBe(true);
    for (const sql of ['SELECT * FROM public.a', 'DELETE FROM public.a']) {
      expect(engine.evaluateSql(loaded, sql).allowed).toBe(engine.evaluateSql(readPublic, sql).allowed);
    }
  });

  test('EXECUTE of a prepared statement name is judged as kind execute only', () => {
    const prep = compile([{ effect: 'allow', type: 'sql', kinds: ['execute'] }]);
    expect(engine.evaluateSql(prep, 'EXECUTE anything').allowed).toBe(true);
    expect(engine.evaluateSql(prep, "EXECUTE anything(pg_read_file('x'))").allowed).toBe(false);
    expect(engine.evaluateSql(readPublic, 'EXECUTE anything').allowed).toBe(false);
  });

  test('search_path pinned on the connection: SET search_path is refused whatever the rules say', () => {
    const setter = compile([{ effect: 'allow', type: 'sql', kinds: ['set'] }], 'postgres', ['public']);
    expect(engine.evaluateSql(setter, 'SET search_path = public').allowed).toBe(false);
    expect(engine.evaluateSql(setter, 'SET statement_timeout = 5').allowed).toBe(true);
    const unpinned = compile([{ effect: 'allow', type: 'sql', kinds: ['set'] }]);
    expect(engine.evaluateSql(unpinned, 'SET search_path = public').allowed).toBe(true);
  });

  test('the default engine functions work too', () => {
    expect(evaluateSql(readPublic, 'SELECT 1').allowed).toBe(true);
  });
});

describe('evaluateSqlAsync and the parser pool', () => {
  const bigQuery = (bytes: number): string => {
    const one = 'SELECT a.id, b.name FROM public.accounts a JOIN public.orders b ON b.account_id = a.id WHERE a.id > 10;\n';
    return one.repeat(Math.ceil(bytes / one.length));
  };

  test('large texts are judged on a worker with the same result as inline', async () => {
    const sql = `${bigQuery(64 * 1024)} DELETE FROM public.t`;
    const d = await engine.evaluateSqlAsync(readPublic, sql);
    expect(d.allowed).toBe(false);
    expect(d.statements.length).toBeGreaterThan(500);
    expect(d.statements.at(-1)).toMatchObject({ kind: 'delete', allowed: false });
    const inline = createPolicyEngine({ limits: { syncMaxBytes: 1024 * 1024 }, cache: false }).evaluateSql(readPublic, sql);
    expect(d.statements.map((s) => [s.kind, s.allowed, s.fingerprint])).toEqual(inline.statements.map((s) => [s.kind, s.allowed, s.fingerprint]));
  });

  test('parsing a 1 MiB query on the pool does not block the event loop', async () => {
    const sql = bigQuery(1024 * 1024);
    // Count the turns this thread's event loop makes while the parse is in flight: a parse on
    // a worker leaves the loop free (hundreds of turns), an inline parse allows none.
    const countTurnsDuring = async (work: () => unknown): Promise<number> => {
      let turns = 0;
      let running = true;
      const spin = (): void => {
        if (!running) return;
        turns += 1;
        setImmediate(spin);
      };
      setImmediate(spin);
      await work();
      running = false;
      return turns;
    };
    let pooled: Awaited<ReturnType<typeof engine.evaluateSqlAsync>> | undefined;
    const pooledTurns = await countTurnsDuring(async () => {
      pooled = await engine.evaluateSqlAsync(readPublic, sql);
    });
    expect(pooled?.allowed).toBe(true);
    expect(pooledTurns).toBeGreaterThan(50);
    const inlineTurns = await countTurnsDuring(() => analyzeSqlText(sql, { maxBytes: 2 * 1024 * 1024, withNormalizedText: false }));
    expect(inlineTurns).toBe(0);
  });

  test('a parse over the time budget ends its worker and is a denial', async () => {
    // 1 MiB takes about a second to parse; 4 KiB a few milliseconds.
    const e = createPolicyEngine({ limits: { parseTimeoutMs: 150, inlineBytes: 1024, maxBytes: 2 * 1024 * 1024, maxStatements: 20_000 }, cache: false, pool: { size: 1 } });
    const d = await e.evaluateSqlAsync(readPublic, bigQuery(1024 * 1024));
    expect(d).toMatchObject({ allowed: false, failure: 'timeout' });
    // The pool replaces the worker and keeps serving.
    const e2 = await e.evaluateSqlAsync(readPublic, bigQuery(4 * 1024));
    expect(e2.allowed).toBe(true);
    await e.close();
  });

  test('an overloaded pool refuses rather than queue without bound', async () => {
    const e = createPolicyEngine({ limits: { inlineBytes: 16 }, cache: false, pool: { size: 1, maxQueue: 1 } });
    const sql = bigQuery(32 * 1024);
    // Warm the worker first: while it starts, everything waits in the queue.
    expect((await e.evaluateSqlAsync(readPublic, sql)).allowed).toBe(true);
    const results = await Promise.all([0, 1, 2, 3].map((i) => e.evaluateSqlAsync(readPublic, `${sql} SELECT ${i}`)));
    expect(results.filter((r) => r.failure === 'busy').length).toBe(2);
    expect(results.filter((r) => r.allowed).length).toBe(2);
    await e.close();
  });
});

describe('evaluateFunctionCall', () => {
  test('denied unless a rule names kind function_call', () => {
    expect(engine.evaluateFunctionCall(readPublic).allowed).toBe(false);
    expect(engine.evaluateFunctionCall(compile([{ effect: 'allow', type: 'all' }])).allowed).toBe(false);
    expect(engine.evaluateFunctionCall(compile([{ effect: 'allow', type: 'sql' }])).allowed).toBe(false);
    const allowed = compile([{ id: 'fc', effect: 'allow', type: 'sql', kinds: ['function_call'] }]);
    expect(engine.evaluateFunctionCall(allowed)).toMatchObject({ allowed: true, rule: { ruleId: 'fc' }, statements: [{ kind: 'function_call' }] });
    const denied = compile([{ effect: 'allow', type: 'sql', kinds: ['function_call'] }, { effect: 'deny', type: 'sql', kinds: ['function_call'] }]);
    expect(engine.evaluateFunctionCall(denied).allowed).toBe(false);
  });
});

describe('evaluateTcp', () => {
  test('needs an all allow rule; an all deny rule wins', () => {
    expect(engine.evaluateTcp(compile([{ effect: 'allow', type: 'all' }], 'tcp')).allowed).toBe(true);
    expect(engine.evaluateTcp(compile([{ effect: 'allow', type: 'all' }, { effect: 'deny', type: 'all' }], 'tcp')).allowed).toBe(false);
    expect(engine.evaluateTcp(compile([{ effect: 'allow', type: 'sql' }], 'tcp')).allowed).toBe(false);
  });
});

describe('explain', () => {
  test('explainSql traces every rule tried for every statement', () => {
    const p = compile([
      { id: 'deny-secret', effect: 'deny', type: 'sql', relations: ['secret.*'] },
      { id: 'read', effect: 'allow', type: 'sql', kinds: ['select'], relations: ['public.*'] },
      { id: 'write', effect: 'allow', type: 'sql', kinds: ['insert'], relations: ['public.log'] },
    ]);
    const x = engine.explainSql(p, 'SELECT * FROM public.a; INSERT INTO public.other VALUES (1)');
    expect(x.allowed).toBe(false);
    expect(x.statements.map((s) => s.trace.map((t) => [t.rule.ruleId, t.matched]))).toEqual([
      [['deny-secret', false], ['read', true]],
      [['deny-secret', false], ['read', false], ['write', false]],
    ]);
    expect(x.statements[1]?.trace[2]?.detail).toContain('public.other');
  });

  test('explainHttp traces rules and returns the normalised target', () => {
    const p = compile([{ id: 'api', effect: 'allow', type: 'http', paths: ['/api/**'] }], 'http');
    const x = engine.explainHttp(p, { method: 'GET', target: '/api/./x/../y' });
    expect(x).toMatchObject({ allowed: true, target: '/api/y', trace: [{ rule: { ruleId: 'api' }, matched: true }] });
  });
});

describe('before initPolicyEngine', () => {
  test('SQL is denied, not thrown', async () => {
    await jest.isolateModulesAsync(async () => {
      const fresh = (await import('./engine')) as { createPolicyEngine: typeof createPolicyEngine };
      const d = fresh.createPolicyEngine().evaluateSql(readPublic, 'SELECT 1');
      expect(d).toMatchObject({ allowed: false, failure: 'not_ready' });
    });
  });
});
