import { createHash } from 'node:crypto';
import { z } from 'zod';
import { AppError, type FieldProblem } from '@pa/kit';
import { PROTOCOLS, policyDocumentSchema, ruleSchema, type PolicyDocumentInput, type Protocol, type Rule, type Tags } from './schema';
import { selectorMatches } from './selector';
import { prepareRule, type PreparedRule } from './rules';

/** Format version of compiled policies; a node refuses a compiled policy of another version. */
export const COMPILED_POLICY_VERSION = 1;

/** Where compiled rules came from. */
export interface CompiledPolicySource {
  readonly id: string;
  readonly name: string;
  readonly version: number;
}

/** One rule of a compiled policy. */
export interface CompiledRule {
  /** Index into `CompiledPolicy.policies`. */
  readonly policy: number;
  /** The rule's id in its policy (`#<index>` when the stored rule had none). */
  readonly id: string;
  /** The rule itself, without `id` and `description`. */
  readonly rule: Rule;
}

/**
 * A user's effective policy for one connection: immutable, JSON-serialisable
 * and compact enough to travel inside a grant. Rules keep policy order (by
 * policy id, then rule order); only rules for the connection's protocol are
 * kept (`sql` for postgres, `http` for http, and `all` for every protocol).
 */
export interface CompiledPolicy {
  /** Format version ({@link COMPILED_POLICY_VERSION}). */
  readonly version: number;
  readonly protocol: Protocol;
  /** Connection name. */
  readonly connection: string;
  /**
   * The backend's pinned `search_path`, when the connection declares one:
   * unqualified names then resolve through it (and `SET search_path` is refused).
   * Absent: unqualified names could be in any schema.
   */
  readonly searchPath?: readonly string[];
  readonly policies: readonly CompiledPolicySource[];
  readonly rules: readonly CompiledRule[];
  /** sha256 (base64url) of everything above; keys the decision cache. */
  readonly hash: string;
}

/** A stored policy as the compiler takes it. */
export type StoredPolicy = PolicyDocumentInput & { readonly id: string; readonly version: number };

/** What {@link compilePolicy} needs. */
export interface CompilePolicyInput {
  readonly policies: readonly StoredPolicy[];
  /** The user's role names. */
  readonly roles: readonly string[];
  readonly connection: {
    readonly name: string;
    readonly tags: Readonly<Tags>;
    readonly protocol: Protocol;
    /** The backend role's pinned search_path (see {@link CompiledPolicy.searchPath}). */
    readonly searchPath?: readonly string[];
  };
}

const RULE_TYPES_FOR: Readonly<Record<Protocol, ReadonlySet<Rule['type']>>> = {
  postgres: new Set(['sql', 'all']),
  http: new Set(['http', 'all']),
  tcp: new Set(['all']),
};

const canonicalJson = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
};

const hashOf = (body: Omit<CompiledPolicy, 'hash'>): string =>
  createHash('sha256').update(canonicalJson(body)).digest('base64url');

const deepFreeze = <T>(value: T): T => {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
};

const stripRule = (rule: Rule): Rule => {
  const { id: _id, description: _description, ...rest } = rule;
  return rest as Rule;
};

const identifier = z.string().min(1).max(63);

/**
 * Compiles a user's effective policy for one connection. Takes the enabled
 * policies that bind one of `roles` and whose selector covers the connection.
 * Every included rule is checked with the same code the control plane
 * validates with; a broken stored policy is an error (never silently skipped,
 * which could drop a deny rule).
 *
 * @throws AppError `POLICY_INVALID` with per-rule problems.
 */
export const compilePolicy = (input: CompilePolicyInput): CompiledPolicy => {
  const problems: FieldProblem[] = [];
  const roles = new Set(input.roles);
  const { connection } = input;
  if (!PROTOCOLS.includes(connection.protocol)) {
    throw new AppError('POLICY_INVALID', { details: [{ path: 'connection.protocol', message: 'unknown protocol' }] });
  }
  const searchPath = connection.searchPath?.map((s) => s.trim().toLowerCase());
  if (searchPath !== undefined && (searchPath.length === 0 || searchPath.some((s) => !identifier.safeParse(s).success || s.startsWith('$')))) {
    problems.push({ path: 'connection.searchPath', message: 'a pinned search_path is a non-empty list of schema names ($user is not supported)' });
  }
  const keep = RULE_TYPES_FOR[connection.protocol];
  const included = input.policies
    .map((stored) => ({ stored, parsed: policyDocumentSchema.safeParse(stripStored(stored)) }))
    .filter(({ stored, parsed }) => {
      if (!parsed.success) {
        problems.push(...parsed.error.issues.map((i) => ({ path: ['policies', stored.id, ...i.path.map(String)].join('.'), message: i.message })));
        return false;
      }
      const doc = parsed.data;
      return doc.enabled && doc.roles.some((r) => roles.has(r)) && selectorMatches(doc.selector, connection);
    })
    .sort((a, b) => (a.stored.id < b.stored.id ? -1 : a.stored.id > b.stored.id ? 1 : 0));

  const policies: CompiledPolicySource[] = [];
  const rules: CompiledRule[] = [];
  for (const { stored, parsed } of included) {
    if (!parsed.success) continue;
    const index = policies.length;
    policies.push({ id: stored.id, name: parsed.data.name, version: stored.version });
    parsed.data.rules.forEach((rule, i) => {
      const id = rule.id ?? `#${i}`;
      prepareRule(rule, { policyId: stored.id, policyName: parsed.data.name, ruleId: id, ruleName: rule.name }, `policies.${stored.id}.rules.${i}`, problems);
      if (keep.has(rule.type)) rules.push({ policy: index, id, rule: stripRule(rule) });
    });
  }
  if (problems.length > 0) throw new AppError('POLICY_INVALID', { details: problems });
  const body: Omit<CompiledPolicy, 'hash'> = {
    version: COMPILED_POLICY_VERSION,
    protocol: connection.protocol,
    connection: connection.name,
    ...(searchPath === undefined ? {} : { searchPath }),
    policies,
    rules,
  };
  return deepFreeze({ ...body, hash: hashOf(body) });
};

const stripStored = (stored: StoredPolicy): PolicyDocumentInput => {
  const { id: _id, version: _version, ...doc } = stored;
  return doc;
};

const compiledPolicySchema = z.strictObject({
  version: z.literal(COMPILED_POLICY_VERSION),
  protocol: z.enum(PROTOCOLS),
  connection: z.string(),
  searchPath: z.array(identifier).min(1).optional(),
  policies: z.array(z.strictObject({ id: z.string(), name: z.string(), version: z.number().int() })),
  rules: z.array(z.strictObject({ policy: z.number().int().nonnegative(), id: z.string().min(1), rule: ruleSchema })),
  hash: z.string(),
});

/** A compiled policy ready to evaluate. */
export interface PreparedPolicy {
  readonly hash: string;
  readonly protocol: Protocol;
  readonly searchPath: readonly string[] | undefined;
  readonly deny: readonly PreparedRule[];
  readonly allow: readonly PreparedRule[];
  /** Whether some SQL rule has a `pattern` (statements then need their normalised text). */
  readonly needsNormalizedText: boolean;
}

/** Why a compiled policy cannot be used. */
export interface UnusablePolicy {
  readonly error: string;
  readonly problems: readonly FieldProblem[];
}

const prepared = new WeakMap<object, PreparedPolicy | UnusablePolicy>();

const prepareUncached = (value: unknown): PreparedPolicy | UnusablePolicy => {
  const parsed = compiledPolicySchema.safeParse(value);
  if (!parsed.success) {
    return { error: 'compiled policy is malformed or of another format version', problems: parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })) };
  }
  const { hash, ...body } = parsed.data;
  if (hashOf(body) !== hash) return { error: 'compiled policy hash does not match its content', problems: [] };
  const problems: FieldProblem[] = [];
  const deny: PreparedRule[] = [];
  const allow: PreparedRule[] = [];
  let needsNormalizedText = false;
  body.rules.forEach((r, i) => {
    const source = body.policies[r.policy];
    if (source === undefined) {
      problems.push({ path: `rules.${i}.policy`, message: 'no such policy' });
      return;
    }
    const rule = prepareRule(r.rule, { policyId: source.id, policyName: source.name, ruleId: r.id, ruleName: r.rule.name }, `rules.${i}.rule`, problems);
    if (rule.type === 'sql' && rule.pattern !== undefined) needsNormalizedText = true;
    (rule.effect === 'deny' ? deny : allow).push(rule);
  });
  if (problems.length > 0) return { error: 'compiled policy has rules the engine cannot use', problems };
  return { hash, protocol: body.protocol, searchPath: body.searchPath, deny, allow, needsNormalizedText };
};

/**
 * The evaluable form of a compiled policy, built once per object (the hash is
 * checked and every rule re-validated: a policy from a grant is data).
 */
export const preparePolicy = (policy: unknown): PreparedPolicy | UnusablePolicy => {
  if (policy === null || typeof policy !== 'object') return { error: 'compiled policy is not an object', problems: [] };
  const cached = prepared.get(policy);
  if (cached !== undefined) return cached;
  const result = prepareUncached(policy);
  // Frozen once prepared, so the cached evaluable form can never go stale.
  if (!isUnusable(result)) deepFreeze(policy);
  prepared.set(policy, result);
  return result;
};

/** Whether {@link preparePolicy} failed. */
export const isUnusable = (p: PreparedPolicy | UnusablePolicy): p is UnusablePolicy => 'error' in p;

/**
 * Checks a compiled policy read from elsewhere (a grant's claims, a cache):
 * shape, format version, hash and every rule. Returns it deep-frozen.
 *
 * @throws AppError `POLICY_INVALID` when it cannot be used.
 */
export const loadCompiledPolicy = (value: unknown): CompiledPolicy => {
  const p = preparePolicy(value);
  if (isUnusable(p)) throw new AppError('POLICY_INVALID', { message: `The compiled policy cannot be used: ${p.error}.`, details: [...p.problems] });
  const policy = deepFreeze(value as CompiledPolicy);
  return policy;
};
