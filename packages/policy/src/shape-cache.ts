import type { StatementKind } from './schema';
import type { StatementFacts } from './sql/analyze';
import type { SqlShape } from './sql/shape';

/**
 * The shape cache's rules: which decisions may be reused for texts that
 * differ only in numeric constants, and how the reused decision is re-texted.
 * See the README ("Shape cache") for the safety argument.
 */

/** A decision stored under a shape, with where the statement sits in the text. */
export interface ShapeEntry<D> {
  readonly decision: D;
  /** Characters before the statement's text. */
  readonly lead: number;
  /** Characters after it. */
  readonly trail: number;
}

/** Kinds whose facts never depend on a constant's value (`lock` is `FOR UPDATE/SHARE`: the primary kind is one of the others). */
const SHAPE_PRIMARY_KINDS: ReadonlySet<StatementKind> = new Set<StatementKind>(['select', 'insert', 'update', 'delete', 'merge']);
const SHAPE_KINDS: ReadonlySet<StatementKind> = new Set<StatementKind>([...SHAPE_PRIMARY_KINDS, 'lock']);

/**
 * Functions whose constant arguments the analyser reads (analyze.ts,
 * visitFuncCall: the sequence named by nextval/currval/setval's argument,
 * the setting named by set_config/current_setting). Matched on the last name
 * part, as the analyser does.
 */
const CONSTANT_READING_FUNCTIONS: ReadonlySet<string> = new Set(['nextval', 'currval', 'setval', 'set_config', 'current_setting']);

/**
 * Whether a statement's facts are independent of the values of its
 * constants: the analyser reads constants only for settings (SET, set_config,
 * current_setting), EXPLAIN options and sequence functions, and refusals
 * (`forbidden`) may come from those; all excluded here.
 */
export const shapeEligibleFacts = (s: StatementFacts): boolean =>
  s.forbidden === undefined &&
  SHAPE_PRIMARY_KINDS.has(s.kind) &&
  s.kinds.every((k) => SHAPE_KINDS.has(k)) &&
  s.settings.length === 0 &&
  !s.dynamicRelation &&
  s.functions.every((f) => !CONSTANT_READING_FUNCTIONS.has(f.name));

/**
 * Whether every token the lexer replaced is, in PostgreSQL's own parse tree, a
 * numeric constant node that starts at that token (or at a unary minus just
 * before it, which the grammar folds into the constant) with the token's
 * value. This is what makes the lexer's opinion irrelevant to safety: a digit
 * the lexer took for a constant but PostgreSQL read as part of a string,
 * identifier, parameter, type modifier (`float(24)`, `int[3]`,
 * `current_time(3)`) or option has no such node, and the shape is not stored.
 */
export const constantsVerified = (sql: string, shape: SqlShape, found: ReadonlyMap<number, readonly string[]>): boolean => {
  const ascii = Buffer.byteLength(sql, 'utf8') === sql.length;
  let bytes = 0;
  let prev = 0;
  const byteOffset = (index: number): number => {
    if (ascii) return index;
    bytes += Buffer.byteLength(sql.slice(prev, index), 'utf8');
    prev = index;
    return bytes;
  };
  for (const c of shape.constants) {
    const token = sql.slice(c.start, c.end);
    const value = c.decimal ? token : String(Number(token));
    if (found.get(byteOffset(c.start))?.includes(value) === true) continue;
    // `- 5` is folded into the constant -5, located at the minus sign.
    let m = c.start - 1;
    while (m >= 0 && /[ \t\n\r\f\v]/.test(sql[m] as string)) m -= 1;
    if (m < 0 || sql[m] !== '-' || (m > 0 && sql[m - 1] === '-')) return false;
    const negated = c.decimal ? `-${token}` : String(-Number(token));
    const atMinus = ascii ? found.get(m) : found.get(Buffer.byteLength(sql.slice(0, m), 'utf8'));
    if (atMinus?.includes(negated) !== true) return false;
  }
  return true;
};

/**
 * Where the statement's text sits in `sql`, when it occurs exactly once and
 * covers every replaced token; undefined otherwise (the shape is not stored).
 */
export const statementPlacement = (sql: string, shape: SqlShape, text: string): { lead: number; trail: number } | undefined => {
  const lead = sql.indexOf(text);
  if (lead < 0 || text.length === 0 || sql.indexOf(text, lead + 1) >= 0) return undefined;
  const end = lead + text.length;
  if (!shape.constants.every((c) => c.start >= lead && c.end <= end)) return undefined;
  return { lead, trail: sql.length - end };
};

/** The statement text of `sql` for an entry stored with `lead`/`trail`. */
export const placedText = (sql: string, entry: { readonly lead: number; readonly trail: number }): string =>
  sql.slice(entry.lead, sql.length - entry.trail);
