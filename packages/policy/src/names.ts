/**
 * Object names (relations, functions) as PostgreSQL sees them, and the
 * patterns rules use to name them.
 *
 * Names come from the parse tree already case-folded (unquoted identifiers
 * lower-cased, quoted ones kept). Patterns are folded the same way: unquoted
 * parts are lower-cased, `"Quoted"` parts are kept; `*` is a wildcard in either.
 */

/** A (possibly schema-qualified) object name from a statement. */
export interface ObjectName {
  /** Schema as written, or undefined when the statement did not qualify the name. */
  readonly schema: string | undefined;
  readonly name: string;
}

/** A parsed object-name pattern: `name` (any schema) or `schema.name`. */
export interface ObjectPattern {
  readonly source: string;
  /** Undefined when the pattern has no schema part: it then matches the name in any schema. */
  readonly schema: RegExp | undefined;
  /** Whether the schema part is `*` alone (matches every schema). */
  readonly anySchema: boolean;
  readonly name: RegExp;
  /** Whether the name part has no wildcard: the pattern names one object explicitly. */
  readonly isExplicit: boolean;
  /** The literal name part when explicit (for the default function deny list). */
  readonly literalName: string | undefined;
}

const SIMPLE_IDENT = /^[a-z_][a-z0-9_$]*$/;

/** Renders one identifier the way PostgreSQL would need it written (quoted when not simple). */
export const quoteIdent = (part: string): string =>
  SIMPLE_IDENT.test(part) ? part : `"${part.replace(/"/g, '""')}"`;

/** Renders a name as `schema.name` (or `name` when unqualified), quoting parts as needed. */
export const formatObjectName = (n: ObjectName): string =>
  n.schema === undefined ? quoteIdent(n.name) : `${quoteIdent(n.schema)}.${quoteIdent(n.name)}`;

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/** Compiles a glob where `*` matches any run of characters (including none) into an anchored RegExp. */
export const globToRegExp = (glob: string): RegExp =>
  new RegExp(`^${glob.split('*').map(escapeRegExp).join('.*')}$`, 's');

/** Splits `a.b` / `"a.b".c` into parts, folding unquoted parts to lower case. Throws on malformed input. */
export const splitPatternParts = (source: string): string[] => {
  const parts: string[] = [];
  let current = '';
  let i = 0;
  let partStarted = false;
  while (i < source.length) {
    const ch = source[i] as string;
    if (ch === '"') {
      const end = findClosingQuote(source, i + 1);
      if (end < 0) throw new Error('unbalanced double quote');
      current += source.slice(i + 1, end).replace(/""/g, '"');
      i = end + 1;
      partStarted = true;
      continue;
    }
    if (ch === '.') {
      if (!partStarted || current === '') throw new Error('empty name part');
      parts.push(current);
      current = '';
      partStarted = false;
      i += 1;
      continue;
    }
    current += ch.toLowerCase();
    partStarted = true;
    i += 1;
  }
  if (!partStarted || current === '') throw new Error('empty name part');
  parts.push(current);
  return parts;
};

const findClosingQuote = (s: string, from: number): number => {
  let i = from;
  while (i < s.length) {
    if (s[i] === '"') {
      if (s[i + 1] === '"') {
        i += 2;
        continue;
      }
      return i;
    }
    i += 1;
  }
  return -1;
};

/**
 * Parses an object-name pattern. Throws an Error with a human message when the
 * pattern is malformed (the validator reports it against the rule).
 */
export const parseObjectPattern = (source: string): ObjectPattern => {
  const parts = splitPatternParts(source.trim());
  if (parts.length > 2) throw new Error('use `name` or `schema.name` (database-qualified names are not supported)');
  const namePart = parts[parts.length - 1] as string;
  const schemaPart = parts.length === 2 ? (parts[0] as string) : undefined;
  const isExplicit = !namePart.includes('*');
  return {
    source,
    schema: schemaPart === undefined ? undefined : globToRegExp(schemaPart),
    anySchema: schemaPart === undefined || /^\*+$/.test(schemaPart),
    name: globToRegExp(namePart),
    isExplicit,
    literalName: isExplicit ? namePart : undefined,
  };
};

/** How a pattern treats names the statement did not qualify. */
export type MatchMode = 'allow' | 'deny';

/**
 * Whether `pattern` matches `object`.
 *
 * An unqualified name in a statement resolves through `search_path` at run
 * time, which the engine cannot see. The schemas it could resolve to are
 * `candidates` (undefined when unknown). For an allow rule, every candidate
 * must match (unknown: only a pattern whose schema is `*` or absent); for a
 * deny rule, any candidate is enough (unknown: the name part alone decides).
 */
export const objectMatches = (
  pattern: ObjectPattern,
  object: ObjectName,
  mode: MatchMode,
  candidates: readonly string[] | undefined,
): boolean => {
  if (!pattern.name.test(object.name)) return false;
  if (pattern.schema === undefined || pattern.anySchema) return true;
  if (object.schema !== undefined) return pattern.schema.test(object.schema);
  if (candidates === undefined) return mode === 'deny';
  const schema = pattern.schema;
  return mode === 'allow' ? candidates.every((c) => schema.test(c)) : candidates.some((c) => schema.test(c));
};
