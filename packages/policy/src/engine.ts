import { formatObjectName } from './names';
import type { StatementKind } from './schema';
import { isUnusable, preparePolicy, type CompiledPolicy, type PreparedPolicy } from './compile';
import { createDecisionCache, type DecisionCacheOptions } from './decision-cache';
import { constantsVerified, placedText, shapeEligibleFacts, statementPlacement, type ShapeEntry } from './shape-cache';
import { judgeHttp, type HttpDecision, type HttpRequestInput } from './evaluate-http';
import { judgeStatement, type RuleTrace } from './evaluate-sql';
import type { RuleRef } from './rules';
import type { StatementFacts } from './sql/analyze';
import { analyzeSqlText, DEFAULT_MAX_STATEMENTS, exceedsBytes, precheckSql, type SqlAnalysis, type SqlFailure } from './sql/parse';
import { createSqlParserPool, type SqlParserPool, type SqlParserPoolOptions } from './sql/parser-pool';
import { shapeSql, type SqlShape } from './sql/shape';

/** Size and time budgets of SQL evaluation. */
export interface SqlLimits {
  /** Largest query text accepted at all, in UTF-8 bytes (default 1 MiB). */
  readonly maxBytes: number;
  /** Largest query text {@link PolicyEngine.evaluateSql} parses on the calling thread (default 64 KiB). */
  readonly syncMaxBytes: number;
  /** Largest query text {@link PolicyEngine.evaluateSqlAsync} parses inline; larger go to the worker pool (default 8 KiB). */
  readonly inlineBytes: number;
  /** Time budget of parsing and analysis (default 1000 ms): enforced by the pool; measured after the fact inline. */
  readonly parseTimeoutMs: number;
  /** Most statements in one query text (default 1000); more is a denial. */
  readonly maxStatements: number;
}

/** Default {@link SqlLimits}. */
export const DEFAULT_SQL_LIMITS: SqlLimits = Object.freeze({
  maxBytes: 1024 * 1024,
  syncMaxBytes: 64 * 1024,
  inlineBytes: 8 * 1024,
  parseTimeoutMs: 1000,
  maxStatements: DEFAULT_MAX_STATEMENTS,
});

/** What one statement of a query is and how it was judged (recorded by the audit trail). */
export interface SqlStatementDecision {
  /** Position in the query, from 0. */
  readonly index: number;
  readonly kind: StatementKind;
  /** Everything the statement does (see the README): `kind` plus e.g. the DML of a data-modifying CTE. */
  readonly kinds: readonly StatementKind[];
  /** Relations read or written, `schema.name` or `name` when unqualified (quoted where needed). */
  readonly relations: readonly string[];
  /** Whether it also touches a relation named only at run time (`nextval($1)`). */
  readonly dynamicRelation: boolean;
  readonly functions: readonly string[];
  readonly settings: readonly string[];
  /** libpg-query fingerprint (empty for a FunctionCall message). */
  readonly fingerprint: string;
  /** The statement's text. */
  readonly text: string;
  readonly allowed: boolean;
  readonly reason: string;
  readonly rule?: RuleRef;
}

/** The decision on one query text (or Parse message). */
export interface SqlDecision {
  /** True only when every statement is allowed. */
  readonly allowed: boolean;
  readonly reason: string;
  /** The rule that decided: the denying rule, or the rule that allowed the first statement. */
  readonly rule?: RuleRef;
  readonly statements: readonly SqlStatementDecision[];
  /** Set when the text could not be judged at all (parse error, over budget…). */
  readonly failure?: SqlFailure;
  readonly policyHash: string;
}

/** A statement decision with how every rule fared. */
export interface ExplainedStatement extends SqlStatementDecision {
  readonly trace: readonly RuleTrace[];
}

/** {@link SqlDecision} with per-rule traces (explain). */
export interface SqlExplanation extends SqlDecision {
  readonly statements: readonly ExplainedStatement[];
}

/** {@link HttpDecision} with per-rule trace (explain). */
export interface HttpExplanation extends HttpDecision {
  readonly trace: readonly RuleTrace[];
}

/** The decision on opening a raw TCP stream. */
export interface TcpDecision {
  readonly allowed: boolean;
  readonly reason: string;
  readonly rule?: RuleRef;
  readonly policyHash: string;
}

/** Options of {@link createPolicyEngine}. */
export interface PolicyEngineOptions {
  readonly limits?: Partial<SqlLimits>;
  /** Decision cache bounds; `false` disables the cache (and the shape cache). */
  readonly cache?: DecisionCacheOptions | false;
  /**
   * Shape cache bounds (decisions reused for texts that differ only in numeric
   * constants; see the README); default: the `cache` bounds. `false` disables it.
   */
  readonly shapeCache?: DecisionCacheOptions | false;
  /** Worker pool for large SQL texts (created on first use). */
  readonly pool?: SqlParserPoolOptions;
}

/** An evaluator: one per process is enough; it holds the decision cache and the parser pool. */
export interface PolicyEngine {
  /** Judges a query text synchronously (needs {@link initPolicyEngine}); never throws. */
  evaluateSql(policy: CompiledPolicy, sql: string): SqlDecision;
  /** Judges a query text; large texts are parsed on worker threads under the time budget. Never rejects. */
  evaluateSqlAsync(policy: CompiledPolicy, sql: string): Promise<SqlDecision>;
  /** Judges a FunctionCall message: denied unless an sql rule names kind `function_call`. */
  evaluateFunctionCall(policy: CompiledPolicy): SqlDecision;
  /** Judges an HTTP request on its normalised target. Never throws. */
  evaluateHttp(policy: CompiledPolicy, request: HttpRequestInput): HttpDecision;
  /** Judges opening a TCP stream: allowed by an `all` allow rule unless an `all` deny rule exists. */
  evaluateTcp(policy: CompiledPolicy): TcpDecision;
  /** {@link PolicyEngine.evaluateSql} with per-rule traces, uncached, up to `limits.maxBytes`. */
  explainSql(policy: CompiledPolicy, sql: string): SqlExplanation;
  /** {@link PolicyEngine.evaluateHttp} with a per-rule trace. */
  explainHttp(policy: CompiledPolicy, request: HttpRequestInput): HttpExplanation;
  /** Stops the parser pool's threads. */
  close(): Promise<void>;
}

const freeze = <T>(value: T): T => {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) freeze(v);
  }
  return value;
};

const CACHEABLE_FAILURES: ReadonlySet<SqlFailure> = new Set(['parse_error', 'too_large', 'invalid_input']);

const FUNCTION_CALL_FACTS: StatementFacts = Object.freeze<StatementFacts>({
  kind: 'function_call',
  kinds: ['function_call'],
  relations: [],
  dynamicRelation: false,
  functions: [],
  settings: [],
  forbidden: undefined,
  fingerprint: '',
  text: '',
  normalizedText: undefined,
});

const statementDecision = (p: PreparedPolicy, s: StatementFacts, index: number, trace?: RuleTrace[]): SqlStatementDecision => {
  const verdict = judgeStatement(p, s, trace);
  return {
    index,
    kind: s.kind,
    kinds: s.kinds,
    relations: s.relations.map(formatObjectName),
    dynamicRelation: s.dynamicRelation,
    functions: s.functions.map(formatObjectName),
    settings: s.settings,
    fingerprint: s.fingerprint,
    text: s.text,
    allowed: verdict.allowed,
    reason: verdict.reason,
    ...(verdict.rule === undefined ? {} : { rule: verdict.rule }),
  };
};

/** Turns an analysis into a decision (and, with `explain`, per-rule traces). */
const decide = (p: PreparedPolicy, analysis: SqlAnalysis, explain: boolean): SqlExplanation => {
  if (!analysis.ok) return { allowed: false, reason: analysis.reason, statements: [], failure: analysis.failure, policyHash: p.hash };
  if (analysis.statements.length === 0) return { allowed: true, reason: 'empty query: nothing to run', statements: [], policyHash: p.hash };
  const statements = analysis.statements.map((s, i) => {
    const trace: RuleTrace[] | undefined = explain ? [] : undefined;
    const d = statementDecision(p, s, i, trace);
    return (trace ? { ...d, trace } : d) as ExplainedStatement;
  });
  const n = statements.length;
  const denied = statements.find((s) => !s.allowed);
  const decider = denied ?? (statements[0] as ExplainedStatement);
  const reason = denied
    ? n > 1 ? `statement ${denied.index + 1} of ${n}: ${denied.reason}` : denied.reason
    : n > 1 ? `all ${n} statements allowed` : decider.reason;
  return { allowed: denied === undefined, reason, ...(decider.rule ? { rule: decider.rule } : {}), statements, policyHash: p.hash };
};

const unusableDecision = (error: string): SqlDecision =>
  freeze({ allowed: false, reason: `policy cannot be evaluated: ${error}`, statements: [], failure: 'internal' as const, policyHash: '' });

const internalDecision = (p: PreparedPolicy, err: unknown): SqlDecision =>
  freeze({ allowed: false, reason: `internal error while judging: ${(err as Error)?.message ?? String(err)}`, statements: [], failure: 'internal' as const, policyHash: p.hash });

/** Creates an evaluator with its own decision cache and (lazily) parser pool. */
/** Decisions made from a shape's decision for another text of that shape (see {@link decisionOrigin}). */
const origins = new WeakMap<SqlDecision, SqlDecision>();

/**
 * The decision `decision` was copied from when the engine answered a text
 * from its shape cache: the same facts (kinds, relations, functions,
 * fingerprints, rule, reason) with another statement text. Callers that derive
 * something from the facts alone (the data plane's audit summary) key it by
 * this object and derive it once per shape. `decision` itself otherwise.
 */
export const decisionOrigin = (decision: SqlDecision): SqlDecision => origins.get(decision) ?? decision;

export const createPolicyEngine = (options: PolicyEngineOptions = {}): PolicyEngine => {
  const limits: SqlLimits = { ...DEFAULT_SQL_LIMITS, ...options.limits };
  const cache = options.cache === false ? undefined : createDecisionCache<SqlDecision>(options.cache ?? {});
  const shapes = options.cache === false || options.shapeCache === false ? undefined : createDecisionCache<ShapeEntry<SqlDecision>>(options.shapeCache ?? options.cache ?? {});
  let pool: SqlParserPool | undefined;
  const poolOptions: SqlParserPoolOptions = { timeoutMs: limits.parseTimeoutMs, ...options.pool };

  const remember = (p: PreparedPolicy, sql: string, decision: SqlDecision): void => {
    cache?.set(p.hash, sql, decision, decision.statements.reduce((n, s) => n + s.text.length, 0));
  };

  const finish = (p: PreparedPolicy, sql: string, analysis: SqlAnalysis): SqlDecision => {
    const decision = freeze(decide(p, analysis, false) as SqlDecision);
    if (analysis.ok || CACHEABLE_FAILURES.has(analysis.failure)) remember(p, sql, decision);
    return decision;
  };

  const analyzeInline = (p: PreparedPolicy, sql: unknown, maxBytes: number, numericConstants?: (facts: StatementFacts) => boolean): SqlAnalysis => {
    const started = performance.now();
    const analysis = analyzeSqlText(sql, { maxBytes, maxStatements: limits.maxStatements, withNormalizedText: p.needsNormalizedText, numericConstants });
    const elapsed = performance.now() - started;
    if (analysis.ok && elapsed > limits.parseTimeoutMs) {
      return { ok: false, failure: 'timeout', reason: `parsing exceeded the time budget of ${limits.parseTimeoutMs} ms` };
    }
    return analysis;
  };

  /**
   * Stores `decision` under the text's shape when it is independent of the
   * values of the replaced constants (see shape-cache.ts); whether it did.
   */
  const rememberShape = (p: PreparedPolicy, sql: string, shape: SqlShape, analysis: SqlAnalysis & { ok: true }, decision: SqlDecision): boolean => {
    const [facts, ...more] = analysis.statements;
    const [statement] = decision.statements;
    if (!shapes || facts === undefined || more.length > 0 || statement === undefined || decision.failure !== undefined) return false;
    if (!shapeEligibleFacts(facts)) return false;
    if (analysis.numericConstants === undefined || !constantsVerified(sql, shape, analysis.numericConstants)) return false;
    const placement = statementPlacement(sql, shape, statement.text);
    if (placement === undefined) return false;
    shapes.set(p.hash, shape.key, { decision, ...placement }, statement.text.length);
    return true;
  };

  /** A shape entry's decision with the statement text of `sql`. */
  const retext = (entry: ShapeEntry<SqlDecision>, sql: string): SqlDecision => {
    const { decision } = entry;
    const statement = decision.statements[0] as SqlStatementDecision;
    const text = placedText(sql, entry);
    if (text === statement.text) return decision;
    const copy: SqlDecision = Object.freeze({ ...decision, statements: Object.freeze([Object.freeze({ ...statement, text })]) });
    origins.set(copy, decision);
    return copy;
  };

  const evaluateSql = (policy: CompiledPolicy, sql: string): SqlDecision => {
    const p = preparePolicy(policy);
    if (isUnusable(p)) return unusableDecision(p.error);
    try {
      if (typeof sql === 'string') {
        const hit = cache?.get(p.hash, sql);
        if (hit) return hit;
        const tooBig = precheckSql(sql, limits.maxBytes);
        if (tooBig !== undefined) return finish(p, sql, tooBig);
        if (exceedsBytes(sql, limits.syncMaxBytes)) {
          return freeze(decide(p, { ok: false, failure: 'too_large', reason: `query text exceeds ${limits.syncMaxBytes} bytes, the cap for synchronous evaluation (use evaluateSqlAsync)` }, false));
        }
        // Shapes: only when no rule reads the text (a pattern sees the constants' values).
        const shape = shapes && !p.needsNormalizedText ? shapeSql(sql) : undefined;
        const shaped = shape !== undefined && shape.constants.length > 0 ? shape : undefined;
        if (shaped) {
          const entry = shapes?.get(p.hash, shaped.key);
          if (entry) return retext(entry, sql);
        }
        const analysis = analyzeInline(p, sql, limits.maxBytes, shaped === undefined ? undefined : shapeEligibleFacts);
        const decision = freeze(decide(p, analysis, false) as SqlDecision);
        if (!(analysis.ok || CACHEABLE_FAILURES.has(analysis.failure))) return decision;
        // A decision kept under its shape also answers this exact text: the exact-text cache keeps the rest
        // (so texts that never repeat, like pgbench's, do not flush it).
        if (!(shaped && analysis.ok && rememberShape(p, sql, shaped, analysis, decision))) remember(p, sql, decision);
        return decision;
      }
      return freeze(decide(p, analyzeInline(p, sql, limits.maxBytes), false));
    } catch (err) {
      return internalDecision(p, err);
    }
  };

  const evaluateSqlAsync = async (policy: CompiledPolicy, sql: string): Promise<SqlDecision> => {
    const p = preparePolicy(policy);
    if (isUnusable(p)) return unusableDecision(p.error);
    try {
      if (typeof sql !== 'string') return evaluateSql(policy, sql);
      const hit = cache?.get(p.hash, sql);
      if (hit) return hit;
      const pre = precheckSql(sql, limits.maxBytes);
      if (pre !== undefined) return finish(p, sql, pre);
      if (!exceedsBytes(sql, limits.inlineBytes)) return evaluateSql(policy, sql);
      pool ??= createSqlParserPool(poolOptions);
      const analysis = await pool.analyze(sql, { maxBytes: limits.maxBytes, maxStatements: limits.maxStatements, withNormalizedText: p.needsNormalizedText });
      return analysis.ok || CACHEABLE_FAILURES.has(analysis.failure) ? finish(p, sql, analysis) : freeze(decide(p, analysis, false));
    } catch (err) {
      return internalDecision(p, err);
    }
  };

  const evaluateFunctionCall = (policy: CompiledPolicy): SqlDecision => {
    const p = preparePolicy(policy);
    if (isUnusable(p)) return unusableDecision(p.error);
    return freeze(decide(p, { ok: true, statements: [FUNCTION_CALL_FACTS] }, false) as SqlDecision);
  };

  const httpDecision = (policy: CompiledPolicy, request: HttpRequestInput, trace?: RuleTrace[]): HttpDecision => {
    const p = preparePolicy(policy);
    if (isUnusable(p)) return { allowed: false, reason: `policy cannot be evaluated: ${p.error}`, target: null, method: String(request?.method ?? ''), policyHash: '' };
    try {
      return { ...judgeHttp(p, request, trace), policyHash: p.hash };
    } catch (err) {
      return { allowed: false, reason: `internal error while judging: ${(err as Error)?.message ?? String(err)}`, target: null, method: String(request?.method ?? ''), policyHash: p.hash };
    }
  };

  return {
    evaluateSql,
    evaluateSqlAsync,
    evaluateFunctionCall,
    evaluateHttp: (policy, request) => freeze(httpDecision(policy, request)),
    evaluateTcp: (policy) => {
      const p = preparePolicy(policy);
      if (isUnusable(p)) return freeze({ allowed: false, reason: `policy cannot be evaluated: ${p.error}`, policyHash: '' });
      const deny = p.deny.find((r) => r.type === 'all');
      if (deny) return freeze({ allowed: false, reason: `denied by rule ${JSON.stringify(deny.ref.ruleName ?? deny.ref.ruleId)} of policy ${JSON.stringify(deny.ref.policyName)}`, rule: deny.ref, policyHash: p.hash });
      const allow = p.allow.find((r) => r.type === 'all');
      if (allow) return freeze({ allowed: true, reason: `allowed by rule ${JSON.stringify(allow.ref.ruleName ?? allow.ref.ruleId)} of policy ${JSON.stringify(allow.ref.policyName)}`, rule: allow.ref, policyHash: p.hash });
      return freeze({ allowed: false, reason: 'no rule allows TCP access (an `all` allow rule is needed)', policyHash: p.hash });
    },
    explainSql: (policy, sql) => {
      const p = preparePolicy(policy);
      if (isUnusable(p)) return unusableDecision(p.error) as SqlExplanation;
      try {
        return freeze(decide(p, analyzeInline(p, sql, limits.maxBytes), true));
      } catch (err) {
        return internalDecision(p, err) as SqlExplanation;
      }
    },
    explainHttp: (policy, request) => {
      const trace: RuleTrace[] = [];
      return freeze({ ...httpDecision(policy, request, trace), trace });
    },
    close: async () => {
      cache?.clear();
      shapes?.clear();
      await pool?.close();
      pool = undefined;
    },
  };
};

let defaultEngine: PolicyEngine | undefined;
const engine = (): PolicyEngine => (defaultEngine ??= createPolicyEngine());

/** {@link PolicyEngine.evaluateSql} on the process-wide default engine. */
export const evaluateSql = (policy: CompiledPolicy, sql: string): SqlDecision => engine().evaluateSql(policy, sql);
/** {@link PolicyEngine.evaluateSqlAsync} on the process-wide default engine. */
export const evaluateSqlAsync = (policy: CompiledPolicy, sql: string): Promise<SqlDecision> => engine().evaluateSqlAsync(policy, sql);
/** {@link PolicyEngine.evaluateFunctionCall} on the process-wide default engine. */
export const evaluateFunctionCall = (policy: CompiledPolicy): SqlDecision => engine().evaluateFunctionCall(policy);
/** {@link PolicyEngine.evaluateHttp} on the process-wide default engine. */
export const evaluateHttp = (policy: CompiledPolicy, request: HttpRequestInput): HttpDecision => engine().evaluateHttp(policy, request);
/** {@link PolicyEngine.evaluateTcp} on the process-wide default engine. */
export const evaluateTcp = (policy: CompiledPolicy): TcpDecision => engine().evaluateTcp(policy);
/** {@link PolicyEngine.explainSql} on the process-wide default engine. */
export const explainSql = (policy: CompiledPolicy, sql: string): SqlExplanation => engine().explainSql(policy, sql);
/** {@link PolicyEngine.explainHttp} on the process-wide default engine. */
export const explainHttp = (policy: CompiledPolicy, request: HttpRequestInput): HttpExplanation => engine().explainHttp(policy, request);
