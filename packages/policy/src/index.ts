/**
 * @pa/policy — the policy engine. Pure: no I/O. The control plane validates,
 * compiles and explains policies with it; the data plane enforces them.
 */
export * from './schema';
export { selectorMatches, type SelectableConnection } from './selector';
export {
  compilePolicy,
  loadCompiledPolicy,
  COMPILED_POLICY_VERSION,
  type CompiledPolicy,
  type CompiledPolicySource,
  type CompiledRule,
  type CompilePolicyInput,
  type StoredPolicy,
} from './compile';
export { validateRules, validatePolicyDocument, type PolicyValidation } from './validate';
export type { RuleRef } from './rules';
export type { RuleTrace } from './evaluate-sql';
export type { HttpRequestInput, HttpDecision } from './evaluate-http';
export {
  createPolicyEngine,
  evaluateSql,
  evaluateSqlAsync,
  evaluateFunctionCall,
  evaluateHttp,
  evaluateTcp,
  explainSql,
  explainHttp,
  DEFAULT_SQL_LIMITS,
  decisionOrigin,
  type PolicyEngine,
  type PolicyEngineOptions,
  type SqlLimits,
  type SqlDecision,
  type SqlStatementDecision,
  type SqlExplanation,
  type ExplainedStatement,
  type HttpExplanation,
  type TcpDecision,
} from './engine';
export type { DecisionCacheOptions } from './decision-cache';
export type { SqlParserPoolOptions } from './sql/parser-pool';
export { initPolicyEngine, isPolicyEngineReady, type SqlFailure } from './sql/parse';
export { fingerprintSql } from './sql/fingerprint';
export { DEFAULT_DENIED_FUNCTIONS } from './sql/default-denied-functions';
export { normalizeHttpTarget, MAX_TARGET_LENGTH, type NormalizedTarget, type RejectedTarget } from './http/normalize-target';
