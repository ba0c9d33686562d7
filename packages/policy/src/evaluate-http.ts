import type { PreparedPolicy } from './compile';
import type { PreparedHttpRule, RuleRef } from './rules';
import type { RuleTrace } from './evaluate-sql';
import { normalizeHttpTarget, parseQueryParams } from './http/normalize-target';

/** An HTTP request as the engine judges it. */
export interface HttpRequestInput {
  /** The request method as received (upper-case token). */
  readonly method: string;
  /** The raw request target (origin-form). */
  readonly target: string;
  /** Request headers; names in any case; repeated headers as arrays. */
  readonly headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
}

/** The decision on one HTTP request. */
export interface HttpDecision {
  readonly allowed: boolean;
  readonly reason: string;
  /** The rule that decided (absent for default deny and refused targets). */
  readonly rule?: RuleRef;
  /** The normalised target: what was judged and what the proxy must forward; null when refused. */
  readonly target: string | null;
  readonly method: string;
  readonly policyHash: string;
}

interface HttpFacts {
  readonly method: string;
  readonly path: string;
  readonly params: Map<string, string[]>;
  readonly headers: Map<string, string[]>;
}

const METHOD = /^[A-Z][A-Z-]{0,31}$/;

const ruleLabel = (r: RuleRef): string =>
  `rule ${JSON.stringify(r.ruleName ?? r.ruleId)} of policy ${JSON.stringify(r.policyName)}`;

const headerMap = (headers: HttpRequestInput['headers']): Map<string, string[]> => {
  const out = new Map<string, string[]>();
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    const list = out.get(key) ?? [];
    if (typeof value === 'string') list.push(value);
    else list.push(...value);
    out.set(key, list);
  }
  return out;
};

/**
 * Conditions on values: for an allow rule every value of the parameter or
 * header must match (and there must be one); for a deny rule one is enough.
 */
const valuesHold = (values: readonly string[] | undefined, re: RegExp, effect: 'allow' | 'deny'): boolean => {
  if (values === undefined || values.length === 0) return false;
  return effect === 'allow' ? values.every((v) => re.test(v)) : values.some((v) => re.test(v));
};

/** Why an HTTP rule does not apply to the request, or undefined when it does (every given condition holds). */
const httpMiss = (r: PreparedHttpRule, f: HttpFacts): string | undefined => {
  if (r.methods !== undefined && !r.methods.has(f.method)) return `method ${f.method} is not in methods`;
  if (r.paths !== undefined && !r.paths.some((re) => re.test(f.path))) return 'path matches no paths glob';
  if (r.pathRegex !== undefined && !r.pathRegex.test(f.path)) return 'path does not match pathRegex';
  for (const [name, re] of r.query) if (!valuesHold(f.params.get(name), re, r.effect)) return `query parameter ${name} condition does not hold`;
  for (const [name, re] of r.headers) if (!valuesHold(f.headers.get(name), re, r.effect)) return `header ${name} condition does not hold`;
  return undefined;
};

/** Judges one HTTP request: target normalised once, deny rules, then allow rules; default deny. */
export const judgeHttp = (p: PreparedPolicy, req: HttpRequestInput, trace?: RuleTrace[]): Omit<HttpDecision, 'policyHash'> => {
  const method = typeof req.method === 'string' ? req.method : '';
  if (!METHOD.test(method)) return { allowed: false, reason: 'method must be an upper-case token', target: null, method };
  const n = normalizeHttpTarget(req.target);
  if (!n.ok) return { allowed: false, reason: `request target refused: ${n.reason}`, target: null, method };
  const facts: HttpFacts = { method, path: n.path, params: parseQueryParams(n.query), headers: headerMap(req.headers) };
  for (const rule of p.deny) {
    if (rule.type === 'sql') continue;
    const miss = rule.type === 'all' ? undefined : httpMiss(rule, facts);
    trace?.push({ rule: rule.ref, effect: 'deny', matched: miss === undefined, detail: miss ?? 'hit' });
    if (miss === undefined) return { allowed: false, reason: `${method} ${n.path}: denied by ${ruleLabel(rule.ref)}`, rule: rule.ref, target: n.target, method };
  }
  for (const rule of p.allow) {
    if (rule.type === 'sql') continue;
    const miss = rule.type === 'all' ? undefined : httpMiss(rule, facts);
    trace?.push({ rule: rule.ref, effect: 'allow', matched: miss === undefined, detail: miss ?? 'allows' });
    if (miss === undefined) return { allowed: true, reason: `allowed by ${ruleLabel(rule.ref)}`, rule: rule.ref, target: n.target, method };
  }
  return { allowed: false, reason: `${method} ${n.path}: no rule allows it`, target: n.target, method };
};
