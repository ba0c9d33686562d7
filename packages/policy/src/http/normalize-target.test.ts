import fc from 'fast-check';
import { normalizeHttpTarget, parseQueryParams } from './normalize-target';

const SEGMENTS = ['a', 'api', 'admin', '.', '..', '%2e', '%2E', '.%2e', '%2e%2E', '', '%41', '%7e', '%7E', '%2f', '%5C', '%00', '%25', '%252e', 'x%20y', '~', '*', '...', 'caf%c3%a9', '%zz', ';', '@', ':'];
const pathLike = fc
  .tuple(fc.array(fc.constantFrom(...SEGMENTS), { maxLength: 12 }), fc.option(fc.array(fc.constantFrom('q=1', 'a=%41', 'b=%2f', '', 'c=%2e%2e', 'd'), { maxLength: 4 }), { nil: undefined }))
  .map(([segs, query]) => `/${segs.join('/')}${query === undefined ? '' : `?${query.join('&')}`}`);
const anyTarget = fc.oneof(pathLike, fc.string({ maxLength: 60 }), fc.string({ unit: 'grapheme', maxLength: 30 }).map((s) => `/${s}`));

describe('normalizeHttpTarget properties', () => {
  test('is idempotent', () => {
    fc.assert(
      fc.property(anyTarget, (target) => {
        const once = normalizeHttpTarget(target);
        if (!once.ok) return;
        expect(normalizeHttpTarget(once.target)).toEqual(once);
      }),
      { numRuns: 5000 },
    );
  });

  test('never yields dot segments, // or escapes of unreserved characters', () => {
    fc.assert(
      fc.property(anyTarget, (target) => {
        const n = normalizeHttpTarget(target);
        if (!n.ok) return;
        expect(n.path.startsWith('/')).toBe(true);
        expect(n.target.includes('//')).toBe(false);
        for (const seg of n.path.split('/')) expect(['.', '..']).not.toContain(seg);
        expect(n.path).not.toMatch(/%(2[DdEe]|3\d|[46][1-9A-Fa-f]|[57][0-9Aa]|5[Ff]|7[Ee])/);
        expect(n.path).not.toMatch(/%(2[Ff]|5[Cc]|00)/);
        expect(n.target).not.toMatch(/%00/);
      }),
      { numRuns: 5000 },
    );
  });

  test('never throws, whatever it is given', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.string({ unit: 'binary' })), (input) => {
        const n = normalizeHttpTarget(input);
        expect(typeof n.ok).toBe('boolean');
      }),
      { numRuns: 3000 },
    );
  });
});

describe('normalizeHttpTarget examples', () => {
  test.each([
    ['/a/b/../c', '/a/c'],
    ['/a/./b/.', '/a/b/'],
    ['/..', '/'],
    ['/a/%7euser', '/a/~user'],
    ['/a/%c3%a9', '/a/%C3%A9'],
    ['/a?x=%2f&y=%7e', '/a?x=%2F&y=~'],
    ['/a//b///c', '/a/b/c'],
  ])('%s → %s', (input, expected) => {
    const n = normalizeHttpTarget(input);
    expect(n.ok && n.target).toBe(expected);
  });

  test.each([
    ['http://h/a', 'origin-form'],
    ['//h/a', '//'],
    ['/a%2Fb', 'encoded slash'],
    ['/a%5cb', 'backslash'],
    ['/a\\b', 'backslash'],
    ['/a%00', 'NUL'],
    ['/a%g1', 'malformed'],
    ['*', 'asterisk'],
    [`/${'a'.repeat(9000)}`, 'longer than'],
  ].map(([input, reason]) => [reason as string, input as string]))('refused: %s (case %#)', (reason, input) => {
    const n = normalizeHttpTarget(input);
    expect(n.ok).toBe(false);
    if (!n.ok) expect(n.reason).toContain(reason);
  });

  test('query parameters are decoded for conditions, repeated ones kept in order', () => {
    expect([...parseQueryParams('a=1&b=x+y&a=%32&c&=e&bad=%E0%A4%A')]).toEqual([
      ['a', ['1', '2']],
      ['b', ['x y']],
      ['c', ['']],
      ['', ['e']],
      ['bad', ['%E0%A4%A']],
    ]);
  });
});
