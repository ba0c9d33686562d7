import { validatePolicyDocument, validateRules } from './validate';

describe('validateRules', () => {
  test.each([
    ['bad regex', { type: 'sql', effect: 'allow', pattern: '(' }, 'rules.0.pattern', 'not a valid regular expression'],
    ['nested quantifier', { type: 'sql', effect: 'deny', pattern: '(a+)+$' }, 'rules.0.pattern', 'backtrack'],
    ['nested quantifier in pathRegex', { type: 'http', effect: 'allow', pathRegex: '^/(\\w*)*$' }, 'rules.0.pathRegex', 'backtrack'],
    ['bad query regex', { type: 'http', effect: 'allow', query: { q: '[' } }, 'rules.0.query.q', 'not a valid'],
    ['bad header regex', { type: 'http', effect: 'allow', headers: { 'x-a': '(?<' } }, 'rules.0.headers.x-a', 'not a valid'],
    ['glob with dot segment', { type: 'http', effect: 'allow', paths: ['/api/../admin'] }, 'rules.0.paths.0', '"/admin"'],
    ['glob with //', { type: 'http', effect: 'deny', paths: ['/api//x'] }, 'rules.0.paths.0', '"/api/x"'],
    ['glob with encoded slash', { type: 'http', effect: 'deny', paths: ['/a%2Fb'] }, 'rules.0.paths.0', 'encoded slash'],
    ['glob with encoded unreserved', { type: 'http', effect: 'deny', paths: ['/%61dmin'] }, 'rules.0.paths.0', '"/admin"'],
    ['glob with lower-case escape', { type: 'http', effect: 'allow', paths: ['/caf%c3%a9'] }, 'rules.0.paths.0', '"/caf%C3%A9"'],
    ['glob with a query', { type: 'http', effect: 'allow', paths: ['/a?b=1'] }, 'rules.0.paths.0', 'query'],
    ['glob with backslash', { type: 'http', effect: 'allow', paths: ['/a\\b'] }, 'rules.0.paths.0', 'backslash'],
    ['CONNECT only', { type: 'http', effect: 'allow', methods: ['CONNECT'] }, 'rules.0.methods', 'never match'],
    ['header with underscore', { type: 'http', effect: 'allow', headers: { x_user: '.*' } }, 'rules.0.headers.x_user', 'underscores'],
    ['invalid header name', { type: 'http', effect: 'allow', headers: { 'a b': '.*' } }, 'rules.0.headers.a b', 'header name'],
    ['relations on kinds without relations', { type: 'sql', effect: 'allow', kinds: ['transaction', 'set'], relations: ['public.*'] }, 'rules.0.relations', 'never touch relations'],
    ['functions on do', { type: 'sql', effect: 'allow', kinds: ['do'], functions: ['*'] }, 'rules.0.functions', 'cannot apply'],
    ['settings on select', { type: 'sql', effect: 'deny', kinds: ['select', 'insert'], settings: ['search_path'] }, 'rules.0.settings', 'cannot apply'],
    ['bad setting pattern', { type: 'sql', effect: 'allow', kinds: ['set'], settings: ['a-b'] }, 'rules.0.settings.0', 'setting pattern'],
    ['empty name part', { type: 'sql', effect: 'allow', relations: ['public..t'] }, 'rules.0.relations.0', 'empty name part'],
    ['unbalanced quote', { type: 'sql', effect: 'allow', relations: ['"public.t'] }, 'rules.0.relations.0', 'unbalanced'],
    ['database-qualified', { type: 'sql', effect: 'allow', functions: ['db.s.f'] }, 'rules.0.functions.0', 'database-qualified'],
    ['unknown kind', { type: 'sql', effect: 'allow', kinds: ['selekt'] }, 'rules.0.kinds.0', ''],
    ['unknown field', { type: 'sql', effect: 'allow', tables: ['x'] }, 'rules.0', 'tables'],
    ['unknown rule type', { type: 'grpc', effect: 'allow' }, 'rules.0.type', ''],
    ['bad fingerprint', { type: 'sql', effect: 'allow', fingerprints: ['xyz'] }, 'rules.0.fingerprints.0', 'fingerprint'],
  ])('%s', (_name, rule, path, message) => {
    const problems = validateRules([rule]);
    expect(problems.map((p) => p.path)).toContain(path);
    expect(problems.find((p) => p.path === path)?.message).toContain(message);
  });

  test('good rules have no problems', () => {
    expect(
      validateRules([
        { type: 'all', effect: 'allow' },
        { id: 'read', type: 'sql', effect: 'allow', kinds: ['select', 'show'], relations: ['public.*', '"Odd.Name"', '*.audit_*'], functions: ['lower', 'pg_catalog.*'], settings: ['app.*'] },
        { type: 'sql', effect: 'deny', pattern: '(?i)^drop\\s+table', fingerprints: ['0123456789abcdef'] },
        { type: 'http', effect: 'allow', methods: ['GET', '*'], paths: ['/api/**', '/files/*.txt', '/caf%C3%A9'], pathRegex: '^/v[0-9]+/', query: { q: '^[a-z]+$' }, headers: { 'Content-Type': '^application/json' } },
      ]),
    ).toEqual([]);
  });

  test('problems in several rules are all reported, sorted, and duplicate ids are caught', () => {
    const problems = validateRules([
      { id: 'a', type: 'sql', effect: 'allow' },
      { id: 'a', type: 'sql', effect: 'allow', pattern: '(' },
      { type: 'bogus' },
    ]);
    expect(problems.map((p) => p.path)).toEqual(['rules.1.id', 'rules.1.pattern', 'rules.2.type']);
  });

  test('rules must be a non-empty array', () => {
    expect(validateRules(undefined).length).toBeGreaterThan(0);
    expect(validateRules([]).map((p) => p.path)).toEqual(['rules']);
  });
});

describe('validatePolicyDocument', () => {
  test('reports shape and rule problems together with document paths', () => {
    const v = validatePolicyDocument({ name: 'bad name!', roles: [], selector: {}, rules: [{ type: 'http', effect: 'allow', paths: ['/a/./b'] }] });
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.problems.map((p) => p.path)).toEqual(['name', 'roles', 'rules.0.paths.0']);
  });

  test('returns the parsed document with defaults', () => {
    const v = validatePolicyDocument({ name: 'ok', roles: ['r'], selector: { tags: { env: 'prod' } }, rules: [{ type: 'all', effect: 'allow' }] });
    expect(v).toMatchObject({ ok: true, policy: { enabled: true, description: '', selector: { match: 'all', connections: [] } } });
  });
});
