import { AppError } from '@pa/kit';
import { compilePolicy, COMPILED_POLICY_VERSION, type StoredPolicy } from './compile';

const stored: StoredPolicy[] = [
  { id: 'pol_prod_ro', version: 3, name: 'prod-read', roles: ['analyst', 'dev'], selector: { match: 'all', tags: { env: 'prod' } }, rules: [{ id: 'r1', effect: 'allow', type: 'sql', kinds: ['select'] }] },
  { id: 'pol_dev_all', version: 1, name: 'dev-all', roles: ['dev'], selector: { match: 'any', tags: { env: 'dev', team: 'core' } }, rules: [{ effect: 'allow', type: 'all' }, { effect: 'allow', type: 'http', paths: ['/**'] }] },
  { id: 'pol_named', version: 7, name: 'named', roles: ['oncall'], selector: { tags: {}, connections: ['billing-db'] }, rules: [{ effect: 'deny', type: 'sql', kinds: ['ddl'] }] },
  { id: 'pol_off', version: 1, name: 'disabled', enabled: false, roles: ['analyst'], selector: { tags: { env: '*' } }, rules: [{ effect: 'deny', type: 'all' }] },
  { id: 'pol_any_env', version: 2, name: 'any-env', roles: ['auditor'], selector: { tags: { env: '*' } }, rules: [{ effect: 'allow', type: 'sql', kinds: ['show'] }] },
];

const conn = (name: string, tags: Record<string, string>, protocol: 'postgres' | 'http' | 'tcp' = 'postgres') => ({ name, tags, protocol });

describe('compilePolicy: which policies apply (user roles × connection)', () => {
  test.each([
    ['analyst', conn('billing-db', { env: 'prod' }), ['pol_prod_ro']],
    ['analyst', conn('scratch', { env: 'dev' }), []],
    ['dev', conn('billing-db', { env: 'prod' }), ['pol_prod_ro']],
    ['dev', conn('scratch', { env: 'dev' }), ['pol_dev_all']],
    ['dev', conn('core-db', { team: 'core', env: 'qa' }), ['pol_dev_all']],
    ['dev', conn('other', { team: 'web' }), []],
    ['oncall', conn('billing-db', {}), ['pol_named']],
    ['oncall', conn('billing-db-2', {}), []],
    ['auditor', conn('anything', { env: 'whatever' }), ['pol_any_env']],
    ['auditor', conn('untagged', {}), []],
    ['nobody', conn('billing-db', { env: 'prod' }), []],
  ] as const)('role %s on %o → %o', (role, connection, expected) => {
    const compiled = compilePolicy({ policies: stored, roles: [role], connection });
    expect(compiled.policies.map((p) => p.id)).toEqual(expected);
  });

  test('several roles union their policies, ordered by policy id, with versions', () => {
    const compiled = compilePolicy({ policies: stored, roles: ['oncall', 'analyst'], connection: conn('billing-db', { env: 'prod' }) });
    expect(compiled.policies).toEqual([
      { id: 'pol_named', name: 'named', version: 7 },
      { id: 'pol_prod_ro', name: 'prod-read', version: 3 },
    ]);
    expect(compiled.rules.map((r) => [r.policy, r.id])).toEqual([[0, '#0'], [1, 'r1']]);
  });

  test('only rules for the connection protocol are kept', () => {
    const pg = compilePolicy({ policies: stored, roles: ['dev'], connection: conn('x', { env: 'dev' }, 'postgres') });
    const http = compilePolicy({ policies: stored, roles: ['dev'], connection: conn('x', { env: 'dev' }, 'http') });
    const tcp = compilePolicy({ policies: stored, roles: ['dev'], connection: conn('x', { env: 'dev' }, 'tcp') });
    expect([pg, http, tcp].map((c) => c.rules.map((r) => r.rule.type))).toEqual([['all'], ['all', 'http'], ['all']]);
  });
});

describe('compilePolicy: the compiled object', () => {
  test('is immutable, JSON-serialisable, versioned and hashed; the hash does not depend on input order', () => {
    const a = compilePolicy({ policies: stored, roles: ['dev', 'analyst'], connection: conn('billing-db', { env: 'prod' }) });
    const b = compilePolicy({ policies: [...stored].reverse(), roles: ['analyst', 'dev'], connection: conn('billing-db', { env: 'prod' }) });
    expect(a.version).toBe(COMPILED_POLICY_VERSION);
    expect(a.hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(b.hash).toBe(a.hash);
    expect(JSON.parse(JSON.stringify(a))).toEqual(a);
    expect(Object.isFrozen(a) && Object.isFrozen(a.rules) && Object.isFrozen(a.rules[0]?.rule)).toBe(true);
  });

  test('the hash changes with any rule and with the pinned search_path', () => {
    const base = { policies: stored, roles: ['analyst'], connection: conn('billing-db', { env: 'prod' }) };
    const h1 = compilePolicy(base).hash;
    const changed = stored.map((p) => (p.id === 'pol_prod_ro' ? { ...p, rules: [{ id: 'r1', effect: 'allow' as const, type: 'sql' as const, kinds: ['insert' as const] }] } : p));
    expect(compilePolicy({ ...base, policies: changed }).hash).not.toBe(h1);
    expect(compilePolicy({ ...base, connection: { ...base.connection, searchPath: ['public'] } }).hash).not.toBe(h1);
  });

  test('descriptions stay out of the compiled form (it travels in grants)', () => {
    const withDescription: StoredPolicy[] = [{ ...stored[0]!, rules: [{ id: 'r1', effect: 'allow', type: 'sql', kinds: ['select'], description: 'x'.repeat(500) }] }];
    const compiled = compilePolicy({ policies: withDescription, roles: ['analyst'], connection: conn('db', { env: 'prod' }) });
    expect(JSON.stringify(compiled)).not.toContain('xxxx');
  });

  test('a broken stored policy is an error pointing at the rule, never skipped', () => {
    const broken: StoredPolicy[] = [...stored, { id: 'pol_bad', version: 1, name: 'bad', roles: ['analyst'], selector: { tags: { env: 'prod' } }, rules: [{ effect: 'deny', type: 'sql', pattern: '(unclosed' }] }];
    let caught: unknown;
    try {
      compilePolicy({ policies: broken, roles: ['analyst'], connection: conn('db', { env: 'prod' }) });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('POLICY_INVALID');
    expect((caught as AppError).details.map((d) => d.path)).toEqual(['policies.pol_bad.rules.0.pattern']);
  });

  test('a pinned search_path must be a list of plain schema names', () => {
    expect(() => compilePolicy({ policies: stored, roles: ['analyst'], connection: { ...conn('db', {}), searchPath: ['$user', 'public'] } })).toThrow(AppError);
    expect(() => compilePolicy({ policies: stored, roles: ['analyst'], connection: { ...conn('db', {}), searchPath: [] } })).toThrow(AppError);
    expect(compilePolicy({ policies: stored, roles: ['analyst'], connection: { ...conn('db', {}), searchPath: ['Public'] } }).searchPath).toEqual(['public']);
  });
});
