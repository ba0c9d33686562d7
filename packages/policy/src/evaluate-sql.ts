import { objectMatches, formatObjectName, type ObjectName, type ObjectPattern } from './names';
import type { StatementKind } from './schema';
import type { PreparedPolicy } from './compile';
import type { PreparedRule, PreparedSqlRule, RuleRef } from './rules';
import type { StatementFacts } from './sql/analyze';
import { isDefaultDeniedFunction } from './sql/default-denied-functions';
import { EXPLICIT_ONLY_KINDS } from './sql/statement-kinds';

/** How one rule fared against one statement or request (explain only). */
export interface RuleTrace {
  readonly rule: RuleRef;
  readonly effect: 'allow' | 'deny';
  /** Whether the rule applied (an allow rule allowed, a deny rule hit). */
  readonly matched: boolean;
  /** Why it did or did not apply. */
  readonly detail: string;
}

/** The verdict on one statement. */
export interface StatementVerdict {
  readonly allowed: boolean;
  readonly reason: string;
  readonly rule: RuleRef | undefined;
}

/** Longest statement text a `pattern` regex is run on; longer texts fail closed. */
export const MAX_PATTERN_TEXT = 64 * 1024;

const ruleLabel = (r: RuleRef): string =>
  `rule ${JSON.stringify(r.ruleName ?? r.ruleId)} of policy ${JSON.stringify(r.policyName)}`;

/** What a statement is, in a few words, for reasons (`delete on public.t`). */
export const describeStatement = (s: StatementFacts): string => {
  const kinds = s.kinds.length > 1 ? `${s.kind} (${s.kinds.filter((k) => k !== s.kind).join(', ')})` : s.kind;
  const rels = s.relations.map(formatObjectName);
  if (s.dynamicRelation) rels.push('<relation named at run time>');
  return rels.length > 0 ? `${kinds} on ${rels.slice(0, 5).join(', ')}${rels.length > 5 ? ', …' : ''}` : kinds;
};

const relationCandidates = (p: PreparedPolicy, name: string): readonly string[] | undefined => {
  if (p.searchPath === undefined) return undefined;
  return name.startsWith('pg_') ? ['pg_catalog', ...p.searchPath] : p.searchPath;
};

const functionCandidates = (p: PreparedPolicy): readonly string[] | undefined =>
  p.searchPath === undefined ? undefined : ['pg_catalog', ...p.searchPath];

const anyPattern = (patterns: readonly ObjectPattern[], o: ObjectName, mode: 'allow' | 'deny', candidates: readonly string[] | undefined): boolean =>
  patterns.some((pat) => objectMatches(pat, o, mode, candidates));

const isFullWildcard = (pat: ObjectPattern): boolean => pat.anySchema && pat.source.replace(/[*.\s]/g, '') === '';

/** Why an allow SQL rule does not allow `s`, or undefined when it does. */
const allowSqlMiss = (p: PreparedPolicy, r: PreparedSqlRule, s: StatementFacts): string | undefined => {
  if (r.kinds !== undefined) {
    const k = s.kinds.find((kind) => !(r.kinds as ReadonlySet<StatementKind>).has(kind));
    if (k !== undefined) return `kind ${k} is not in kinds`;
  } else {
    const k = s.kinds.find((kind) => EXPLICIT_ONLY_KINDS.has(kind));
    if (k !== undefined) return `kind ${k} must be named explicitly in kinds`;
  }
  if (r.relations !== undefined) {
    if (s.dynamicRelation && !r.relations.some(isFullWildcard)) return 'a relation named at run time needs relations pattern `*`';
    const miss = s.relations.find((o) => !anyPattern(r.relations as ObjectPattern[], o, 'allow', relationCandidates(p, o.name)));
    if (miss !== undefined) return `relation ${formatObjectName(miss)} matches no relations pattern${miss.schema === undefined ? ' (unqualified: its schema depends on search_path)' : ''}`;
  }
  const fnCandidates = functionCandidates(p);
  for (const f of s.functions) {
    if (r.functions !== undefined && !anyPattern(r.functions, f, 'allow', fnCandidates)) {
      return `function ${formatObjectName(f)} matches no functions pattern`;
    }
    if (isDefaultDeniedFunction(f.name) && !(r.functions ?? []).some((pat) => pat.isExplicit && objectMatches(pat, f, 'allow', fnCandidates))) {
      return `function ${formatObjectName(f)} is denied by default; an allow rule must name it explicitly in functions`;
    }
  }
  if (r.settings !== undefined) {
    const miss = s.settings.find((name) => !(r.settings as RegExp[]).some((re) => re.test(name)));
    if (miss !== undefined) return `setting ${miss} matches no settings pattern`;
  }
  if (r.fingerprints !== undefined && !r.fingerprints.has(s.fingerprint)) return `fingerprint ${s.fingerprint} is not listed`;
  if (r.pattern !== undefined) {
    const text = s.normalizedText ?? s.text;
    if (text.length > MAX_PATTERN_TEXT) return `statement is longer than ${MAX_PATTERN_TEXT} characters; pattern not tried`;
    if (!r.pattern.test(text)) return 'statement text does not match pattern';
  }
  return undefined;
};

/** Why a deny SQL rule does not hit `s`, or undefined when it does. */
const denySqlMiss = (p: PreparedPolicy, r: PreparedSqlRule, s: StatementFacts): string | undefined => {
  if (r.kinds !== undefined && !s.kinds.some((k) => (r.kinds as ReadonlySet<StatementKind>).has(k))) return 'no kind of the statement is in kinds';
  if (r.relations !== undefined && !s.dynamicRelation && !s.relations.some((o) => anyPattern(r.relations as ObjectPattern[], o, 'deny', relationCandidates(p, o.name)))) {
    return 'no relation matches';
  }
  if (r.functions !== undefined && !s.functions.some((f) => anyPattern(r.functions as ObjectPattern[], f, 'deny', functionCandidates(p)))) return 'no function matches';
  if (r.settings !== undefined && !s.settings.some((name) => (r.settings as RegExp[]).some((re) => re.test(name)))) return 'no setting matches';
  if (r.fingerprints !== undefined && !r.fingerprints.has(s.fingerprint)) return 'fingerprint not listed';
  if (r.pattern !== undefined) {
    const text = s.normalizedText ?? s.text;
    // Too long to try safely: a deny rule fails closed and hits.
    if (text.length <= MAX_PATTERN_TEXT && !r.pattern.test(text)) return 'statement text does not match pattern';
  }
  return undefined;
};

const allowAllMiss = (s: StatementFacts): string | undefined => {
  const k = s.kinds.find((kind) => EXPLICIT_ONLY_KINDS.has(kind));
  if (k !== undefined) return `kind ${k} must be named explicitly in an sql rule's kinds`;
  const f = s.functions.find((fn) => isDefaultDeniedFunction(fn.name));
  if (f !== undefined) return `function ${formatObjectName(f)} is denied by default; an sql allow rule must name it explicitly`;
  return undefined;
};

const missFor = (p: PreparedPolicy, rule: PreparedRule, s: StatementFacts): string | undefined => {
  if (rule.type === 'all') return rule.effect === 'deny' ? undefined : allowAllMiss(s);
  if (rule.type !== 'sql') return 'not an SQL rule';
  return rule.effect === 'deny' ? denySqlMiss(p, rule, s) : allowSqlMiss(p, rule, s);
};

/**
 * Judges one statement: refusals that no policy can lift, then deny rules
 * (deny wins), then allow rules; nothing allowed by default. `trace`, when
 * given, receives how every rule fared (explain).
 */
export const judgeStatement = (p: PreparedPolicy, s: StatementFacts, trace?: RuleTrace[]): StatementVerdict => {
  if (s.forbidden !== undefined) return { allowed: false, reason: s.forbidden, rule: undefined };
  if (p.searchPath !== undefined && s.kinds.includes('set') && s.settings.includes('search_path')) {
    return { allowed: false, reason: 'search_path is pinned for this connection and cannot be changed', rule: undefined };
  }
  for (const rule of p.deny) {
    if (rule.type === 'http') continue;
    const miss = missFor(p, rule, s);
    trace?.push({ rule: rule.ref, effect: 'deny', matched: miss === undefined, detail: miss ?? 'hit' });
    if (miss === undefined) return { allowed: false, reason: `${describeStatement(s)}: denied by ${ruleLabel(rule.ref)}`, rule: rule.ref };
  }
  let firstMiss: string | undefined;
  for (const rule of p.allow) {
    if (rule.type === 'http') continue;
    const miss = missFor(p, rule, s);
    trace?.push({ rule: rule.ref, effect: 'allow', matched: miss === undefined, detail: miss ?? 'allows' });
    if (miss === undefined) return { allowed: true, reason: `allowed by ${ruleLabel(rule.ref)}`, rule: rule.ref };
    firstMiss ??= miss;
  }
  return { allowed: false, reason: `${describeStatement(s)}: no rule allows it${firstMiss === undefined ? '' : ` (first allow rule: ${firstMiss})`}`, rule: undefined };
};
