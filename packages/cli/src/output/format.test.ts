import { formatDuration, formatObject, formatRelative, formatTable, formatTags } from './format';

describe('format', () => {
  it('aligns a table with upper-case headers, cuts long cells and leaves no trailing spaces', () => {
    const text = formatTable(
      [
        { a: 'x', b: 'long value here' },
        { a: 'yyyy', b: 'z'.repeat(100) },
      ],
      [
        { header: 'name', value: (r) => r.a },
        { header: 'desc', value: (r) => r.b, maxWidth: 10 },
      ],
    );
    expect(text.split('\n')).toEqual(['NAME   DESC', 'x      long valu…', `yyyy   ${'z'.repeat(9)}…`, '']);
  });
  it.each([
    [0, '0s'],
    [45_000, '45s'],
    [843_000, '14m 3s'],
    [3_720_000, '1h 2m'],
    [90_061_000, '1d 1h'],
  ])('formats %d ms as %s', (ms, text) => expect(formatDuration(ms)).toBe(text));
  it('says in/ago', () => {
    expect(formatRelative(61_000, 0)).toBe('in 1m 1s');
    expect(formatRelative(0, 5_000)).toBe('5s ago');
  });
  it('prints tags sorted and objects as key/value lines', () => {
    expect(formatTags({ team: 'a', env: 'prod' })).toBe('env=prod, team=a');
    expect(formatObject({ id: 'usr_1', roles: ['a', 'b'], email: null, nested: { n: 1 } })).toBe('id:      usr_1\nroles:   a, b\nemail:   -\nnested:  {"n":1}\n');
  });
});
