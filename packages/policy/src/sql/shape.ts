/**
 * The "shape" of a query text: the text with its plain numeric constants
 * replaced by a marker, so that `… WHERE aid = 12345` and `… WHERE aid = 678`
 * share one key (the engine's shape cache; see the README).
 *
 * The lexer follows PostgreSQL's scanner (scan.l) for every context in which
 * a digit is *not* a numeric constant — quoted strings (with any prefix),
 * quoted identifiers, dollar quotes, comments (nested), identifiers (which
 * may contain digits and `$`), parameters `$n` — and is conservative
 * everywhere else: it replaces a token only when it is exactly `[0-9]{1,9}`
 * (always an integer constant, ICONST) or `[0-9]+\.[0-9]+` (always a
 * numeric constant, FCONST), with different markers for the two, and gives
 * up (no key) on text it is unsure about: a backslash anywhere (escape
 * strings, standard_conforming_strings off), a marker or NUL character, an
 * unterminated quote or comment, a `$` that starts nothing valid.
 *
 * The key alone is not trusted: the engine only stores a decision under a
 * shape after checking, on the real parse tree, that every replaced token is
 * a numeric constant node at that position (see `shape-cache.ts`).
 */

/** Stands for an integer constant of at most 9 digits (always ICONST). */
export const INTEGER_MARK = '\u0001';
/** Stands for a `digits.digits` constant (always FCONST). */
export const DECIMAL_MARK = '\u0002';

/** One replaced token: `sql.slice(start, end)`. */
export interface ShapeConstant {
  readonly start: number;
  readonly end: number;
  readonly decimal: boolean;
}

/** A text's shape key and the tokens replaced to make it. */
export interface SqlShape {
  readonly key: string;
  readonly constants: readonly ShapeConstant[];
}

/** Characters that make the lexer give up: backslash (escapes change where strings end), the markers, NUL. */
const hasUnsureCharacter = (sql: string): boolean =>
  sql.includes('\\') || sql.includes(INTEGER_MARK) || sql.includes(DECIMAL_MARK) || sql.includes('\u0000');

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
/** PostgreSQL ident_start / dolq_start: [A-Za-z_] or any non-ASCII byte. */
const isIdentStart = (c: number): boolean => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c >= 0x80;
/** dolq_cont: ident_start or a digit (no `$`). */
const isTagCont = (c: number): boolean => isIdentStart(c) || isDigit(c);
/** ident_cont: dolq_cont or `$`. */
const isIdentCont = (c: number): boolean => isTagCont(c) || c === 0x24;
/** What a numeric token may run into (digits, letters, `_`, `.`, non-ASCII): PostgreSQL's number and junk rules. */
const isNumberRun = (c: number): boolean => isTagCont(c) || c === 0x2e;

const MAX_INTEGER_DIGITS = 9;

/** End of a quoted run started at `open` (`'` or `"`, doubled to escape), or -1 when unterminated. */
const quotedEnd = (sql: string, open: number, quote: number): number => {
  let i = open + 1;
  for (;;) {
    const j = sql.indexOf(quote === 0x27 ? "'" : '"', i);
    if (j < 0) return -1;
    if (sql.charCodeAt(j + 1) === quote) {
      i = j + 2;
      continue;
    }
    return j + 1;
  }
};

/** End of a (nested) block comment started at `open`, or -1 when unterminated. */
const blockCommentEnd = (sql: string, open: number): number => {
  let depth = 1;
  let i = open + 2;
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 0x2f && sql.charCodeAt(i + 1) === 0x2a) {
      depth += 1;
      i += 2;
    } else if (c === 0x2a && sql.charCodeAt(i + 1) === 0x2f) {
      depth -= 1;
      i += 2;
      if (depth === 0) return i;
    } else {
      i += 1;
    }
  }
  return -1;
};

/** The marker for `sql.slice(start, end)`: `[0-9]{1,9}` or `[0-9]+\.[0-9]+`; otherwise undefined (kept verbatim). */
const numberMark = (sql: string, start: number, end: number): string | undefined => {
  let dot = -1;
  for (let k = start; k < end; k += 1) {
    const c = sql.charCodeAt(k);
    if (isDigit(c)) continue;
    if (c !== 0x2e || dot >= 0) return undefined;
    dot = k;
  }
  if (dot < 0) return end - start <= MAX_INTEGER_DIGITS ? INTEGER_MARK : undefined;
  return dot > start && dot < end - 1 ? DECIMAL_MARK : undefined;
};

/**
 * The shape of `sql` with the replaced tokens, or undefined when the lexer
 * is unsure of the text (then there is no shape caching for it).
 */
export const shapeSql = (sql: string): SqlShape | undefined => {
  if (hasUnsureCharacter(sql)) return undefined;
  const n = sql.length;
  const constants: ShapeConstant[] = [];
  let key = '';
  let copied = 0;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isIdentStart(c)) {
      // Identifier or keyword; also the E/B/X/N/U& prefixes of strings (the quote follows).
      i += 1;
      while (i < n && isIdentCont(sql.charCodeAt(i))) i += 1;
    } else if (isDigit(c) || (c === 0x2e && isDigit(sql.charCodeAt(i + 1)))) {
      const start = i;
      i += 1;
      for (;;) {
        while (i < n && isNumberRun(sql.charCodeAt(i))) i += 1;
        // An exponent's sign: 1e-5 is one token.
        const last = sql.charCodeAt(i - 1);
        const sign = sql.charCodeAt(i);
        if ((last === 0x65 || last === 0x45) && (sign === 0x2b || sign === 0x2d) && isDigit(sql.charCodeAt(i + 1))) {
          i += 2;
          continue;
        }
        break;
      }
      const before = start > 0 ? sql.charCodeAt(start - 1) : 0x20;
      const after = i < n ? sql.charCodeAt(i) : 0x20;
      if (isIdentCont(before) || before === 0x2e || isIdentCont(after) || after === 0x2e) continue;
      const mark = numberMark(sql, start, i);
      if (mark === undefined) continue;
      key += sql.slice(copied, start) + mark;
      copied = i;
      constants.push({ start, end: i, decimal: mark === DECIMAL_MARK });
    } else if (c === 0x27 || c === 0x22) {
      i = quotedEnd(sql, i, c);
      if (i < 0) return undefined;
    } else if (c === 0x24) {
      if (isDigit(sql.charCodeAt(i + 1))) {
        // Parameter $n, kept verbatim: digits (with PostgreSQL 16's `_` separators), then an
        // identifier glued to it is its "trailing junk" error. A `$` right after the digits is
        // not junk (ident_start excludes `$`): it may open a dollar quote, as in `$1$a$…$a$`.
        i += 1;
        while (i < n && (isDigit(sql.charCodeAt(i)) || (sql.charCodeAt(i) === 0x5f && isDigit(sql.charCodeAt(i + 1))))) i += 1;
        if (i < n && isIdentStart(sql.charCodeAt(i))) {
          while (i < n && isIdentCont(sql.charCodeAt(i))) i += 1;
        }
        continue;
      }
      let j = i + 1;
      if (isIdentStart(sql.charCodeAt(j))) {
        j += 1;
        while (j < n && isTagCont(sql.charCodeAt(j))) j += 1;
      }
      if (sql.charCodeAt(j) !== 0x24) return undefined; // a `$` that opens nothing: PostgreSQL's dolqfailed
      const tag = sql.slice(i, j + 1);
      const close = sql.indexOf(tag, j + 1);
      if (close < 0) return undefined;
      i = close + tag.length;
    } else if (c === 0x2d && sql.charCodeAt(i + 1) === 0x2d) {
      // -- comment, to the end of the line (\n or \r, as scan.l).
      i += 2;
      while (i < n) {
        const d = sql.charCodeAt(i);
        if (d === 0x0a || d === 0x0d) break;
        i += 1;
      }
    } else if (c === 0x2f && sql.charCodeAt(i + 1) === 0x2a) {
      i = blockCommentEnd(sql, i);
      if (i < 0) return undefined;
    } else {
      i += 1;
    }
  }
  return { key: copied === 0 ? sql : key + sql.slice(copied), constants };
};

/** The shape key of `sql` (numeric constants replaced by markers), or undefined when the lexer is unsure of the text. */
export const shapeKey = (sql: string): string | undefined => shapeSql(sql)?.key;
