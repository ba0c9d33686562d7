import { loadModule, parseSync } from 'libpg-query';
import { analyzeStatements, type RawStatement, type StatementFacts } from './analyze';

/** Why SQL text could not be analysed (the statement is then denied). */
export type SqlFailure = 'not_ready' | 'invalid_input' | 'too_large' | 'parse_error' | 'timeout' | 'busy' | 'internal';

/** The statements of a query text, or why there are none to judge. */
export type SqlAnalysis =
  | {
      readonly ok: true;
      readonly statements: readonly StatementFacts[];
      /** With `numericConstants`: the value(s) of each numeric constant node, by UTF-8 byte location. */
      readonly numericConstants?: ReadonlyMap<number, readonly string[]>;
    }
  | { readonly ok: false; readonly failure: SqlFailure; readonly reason: string };

/** Default cap on statements per query text. */
export const DEFAULT_MAX_STATEMENTS = 1000;

let ready = false;
let loading: Promise<void> | undefined;

/**
 * Loads the PostgreSQL parser (WASM) once. Call and await before evaluating
 * SQL; after it resolves, SQL evaluation is synchronous.
 */
export const initPolicyEngine = async (): Promise<void> => {
  loading ??= loadModule().then(() => {
    ready = true;
    // The first parses in a fresh thread are many times slower (WASM tier-up):
    // pay that here, not inside the first query's time budget.
    for (let i = 0; i < 20; i += 1) analyzeSqlText(WARM_UP, { maxBytes: 1 << 20, withNormalizedText: i % 2 === 0 });
  });
  await loading;
};

const WARM_UP =
  "WITH x AS (SELECT a.id, lower(b.name) FROM public.accounts a JOIN orders b ON b.id = a.id WHERE a.x > 1) SELECT * FROM x; SET search_path = public; INSERT INTO t VALUES (1, 'a') ON CONFLICT DO NOTHING;";

/** Whether {@link initPolicyEngine} has completed. */
export const isPolicyEngineReady = (): boolean => ready;

// Lone UTF-16 surrogates have no UTF-8 form: the parser and the server would see different text.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Options of {@link analyzeSqlText}. */
export interface AnalyzeSqlOptions {
  readonly maxBytes: number;
  /** Most statements judged in one query text (default 1000); more is a denial. */
  readonly maxStatements?: number;
  readonly withNormalizedText: boolean;
  /**
   * Also report the numeric constant nodes of a single-statement tree when
   * this says so of its facts (the shape cache checks its keys against them).
   */
  readonly numericConstants?: (facts: StatementFacts) => boolean;
}

/** {@link AnalyzeSqlOptions} that can cross a thread boundary (the worker pool's). */
export type PortableAnalyzeSqlOptions = Omit<AnalyzeSqlOptions, 'numericConstants'>;

/**
 * The numeric constant nodes (`A_Const` with `ival` or `fval`) of a parse
 * result: location (UTF-8 byte offset) → value(s) as PostgreSQL stored them.
 */
export const collectNumericConstants = (root: unknown): Map<number, string[]> => {
  const found = new Map<number, string[]>();
  const stack: unknown[] = [root];
  for (;;) {
    const v = stack.pop();
    if (v === undefined) return found;
    if (Array.isArray(v)) {
      for (const x of v) if (typeof x === 'object' && x !== null) stack.push(x);
      continue;
    }
    const node = v as Record<string, unknown>;
    for (const k in node) {
      const x = node[k];
      if (typeof x !== 'object' || x === null) continue;
      if (k !== 'A_Const') {
        stack.push(x);
        continue;
      }
      // A constant holds no other node.
      const c = x as { ival?: { ival?: unknown }; fval?: { fval?: unknown }; location?: unknown };
      const value = c.ival !== undefined ? String(c.ival.ival ?? 0) : c.fval !== undefined ? c.fval.fval : undefined;
      if (typeof value === 'string' && typeof c.location === 'number') {
        const at = found.get(c.location);
        if (at) at.push(value);
        else found.set(c.location, [value]);
      }
    }
  }
};

/**
 * Checks, parses and analyses a query text synchronously: the size cap, then
 * the real PostgreSQL grammar. Never throws.
 */
export const analyzeSqlText = (sql: unknown, options: AnalyzeSqlOptions): SqlAnalysis => {
  if (!ready) return { ok: false, failure: 'not_ready', reason: 'the policy engine is not initialised (initPolicyEngine)' };
  if (typeof sql !== 'string') return { ok: false, failure: 'invalid_input', reason: 'query text is not a string' };
  const precheck = precheckSql(sql, options.maxBytes);
  if (precheck !== undefined) return precheck;
  if (sql.trim() === '') return { ok: true, statements: [] };
  try {
    const result = parseSync(sql) as { stmts?: RawStatement[] };
    const stmts = result.stmts ?? [];
    const maxStatements = options.maxStatements ?? DEFAULT_MAX_STATEMENTS;
    if (stmts.length > maxStatements) {
      return { ok: false, failure: 'too_large', reason: `query text holds ${stmts.length} statements, more than the cap of ${maxStatements}` };
    }
    const statements = analyzeStatements(sql, stmts, { withNormalizedText: options.withNormalizedText });
    const only = statements.length === 1 ? statements[0] : undefined;
    return only !== undefined && options.numericConstants?.(only) === true
      ? { ok: true, statements, numericConstants: collectNumericConstants(stmts) }
      : { ok: true, statements };
  } catch (err) {
    const e = err as { message?: unknown; sqlDetails?: { cursorPosition?: number } };
    const message = typeof e.message === 'string' ? e.message : 'parse failed';
    const at = e.sqlDetails?.cursorPosition;
    return { ok: false, failure: 'parse_error', reason: `parse error: ${message}${typeof at === 'number' ? ` (at byte ${at})` : ''}` };
  }
};

/** Whether `sql` is longer than `maxBytes` in UTF-8 (counted only when it could be). */
export const exceedsBytes = (sql: string, maxBytes: number): boolean =>
  // A string's UTF-8 size is at most 3 bytes per UTF-16 unit.
  sql.length * 3 > maxBytes && Buffer.byteLength(sql, 'utf8') > maxBytes;

/** The checks done before parsing (also before handing text to a worker). */
export const precheckSql = (sql: string, maxBytes: number): SqlAnalysis | undefined => {
  if (exceedsBytes(sql, maxBytes)) {
    return { ok: false, failure: 'too_large', reason: `query text exceeds the size cap of ${maxBytes} bytes` };
  }
  if (sql.includes('\0')) return { ok: false, failure: 'invalid_input', reason: 'query text contains a NUL character' };
  if (LONE_SURROGATE.test(sql)) return { ok: false, failure: 'invalid_input', reason: 'query text is not valid Unicode' };
  return undefined;
};
