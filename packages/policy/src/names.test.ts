import { objectMatches, parseObjectPattern, type ObjectName } from './names';
import { hasNestedQuantifier } from './regex';

const n = (schema: string | undefined, name: string): ObjectName => ({ schema, name });

describe('object patterns and unqualified names', () => {
  test.each([
    // pattern, object, mode, candidates (search_path), expected
    ['public.t', n('public', 't'), 'allow', undefined, true],
    ['public.t', n('other', 't'), 'allow', undefined, false],
    ['public.t', n(undefined, 't'), 'allow', undefined, false],
    ['public.t', n(undefined, 't'), 'deny', undefined, true],
    ['public.t', n(undefined, 't'), 'allow', ['public'], true],
    ['public.t', n(undefined, 't'), 'allow', ['app', 'public'], false],
    ['public.t', n(undefined, 't'), 'deny', ['app', 'public'], true],
    ['secret.t', n(undefined, 't'), 'deny', ['public'], false],
    ['t', n(undefined, 't'), 'allow', undefined, true],
    ['t', n('anything', 't'), 'allow', undefined, true],
    ['*.t', n(undefined, 't'), 'allow', undefined, true],
    ['public.*', n('public', 'x'), 'allow', undefined, true],
    ['PUBLIC.T', n('public', 't'), 'allow', undefined, true],
    ['"Public"."T"', n('public', 't'), 'allow', undefined, false],
    ['"Public"."T"', n('Public', 'T'), 'allow', undefined, true],
    ['"a.b".c', n('a.b', 'c'), 'allow', undefined, true],
    ['*.audit_*', n('x', 'audit_log'), 'deny', undefined, true],
    ['*.audit_*', n('x', 'log'), 'deny', undefined, false],
  ] as const)('%s vs %o (%s, search_path %o) → %s', (pattern, object, mode, candidates, expected) => {
    expect(objectMatches(parseObjectPattern(pattern), object, mode, candidates)).toBe(expected);
  });

  test('explicit patterns name one object', () => {
    expect(parseObjectPattern('pg_sleep').isExplicit).toBe(true);
    expect(parseObjectPattern('pg_catalog.pg_sleep').isExplicit).toBe(true);
    expect(parseObjectPattern('pg_*').isExplicit).toBe(false);
    expect(parseObjectPattern('*').isExplicit).toBe(false);
  });
});

describe('hasNestedQuantifier', () => {
  test.each([
    ['(a+)+', true],
    ['(a*)*b', true],
    ['((ab)+)*', true],
    ['(a|b+){2,}', true],
    ['(ab)+', false],
    ['(a+b)', false],
    ['(a+){3}', false],
    ['[(a+)+]', false],
    ['\\(a+\\)+', false],
    ['^select .* from accounts', false],
  ])('%s → %s', (re, expected) => {
    expect(hasNestedQuantifier(re)).toBe(expected);
  });
});
