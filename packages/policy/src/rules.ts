import type { FieldProblem } from '@pa/kit';
import { globToRegExp, parseObjectPattern, type ObjectPattern } from './names';
import { compileAdminRegex } from './regex';
import type { HttpRule, Rule, SqlRule, StatementKind } from './schema';
import { compilePathGlob, pathGlobProblem } from './http/path-glob';
import { KINDS_WITHOUT_FUNCTIONS, KINDS_WITHOUT_RELATIONS, KINDS_WITH_SETTINGS } from './sql/statement-kinds';

/** Where a compiled rule came from: named in every decision and audit record. */
export interface RuleRef {
  readonly policyId: string;
  readonly policyName: string;
  readonly ruleId: string;
  readonly ruleName: string | undefined;
}

/** A SQL rule ready to evaluate. */
export interface PreparedSqlRule {
  readonly type: 'sql';
  readonly effect: 'allow' | 'deny';
  readonly ref: RuleRef;
  readonly kinds: ReadonlySet<StatementKind> | undefined;
  readonly relations: readonly ObjectPattern[] | undefined;
  readonly functions: readonly ObjectPattern[] | undefined;
  readonly settings: readonly RegExp[] | undefined;
  readonly fingerprints: ReadonlySet<string> | undefined;
  readonly pattern: RegExp | undefined;
}

/** An HTTP rule ready to evaluate. */
export interface PreparedHttpRule {
  readonly type: 'http';
  readonly effect: 'allow' | 'deny';
  readonly ref: RuleRef;
  /** Undefined when any method matches. */
  readonly methods: ReadonlySet<string> | undefined;
  readonly paths: readonly RegExp[] | undefined;
  readonly pathRegex: RegExp | undefined;
  readonly query: ReadonlyArray<readonly [string, RegExp]>;
  readonly headers: ReadonlyArray<readonly [string, RegExp]>;
}

/** An `all` rule. */
export interface PreparedAllRule {
  readonly type: 'all';
  readonly effect: 'allow' | 'deny';
  readonly ref: RuleRef;
}

/** Any rule ready to evaluate. */
export type PreparedRule = PreparedSqlRule | PreparedHttpRule | PreparedAllRule;

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const kindList = (kinds: readonly StatementKind[]): string => kinds.join(', ');

/**
 * Compiles the patterns of one objects list, reporting malformed ones. Returns
 * undefined when the field is absent.
 */
const objectPatterns = (list: readonly string[] | undefined, path: string, problems: FieldProblem[]): ObjectPattern[] | undefined => {
  if (list === undefined) return undefined;
  const out: ObjectPattern[] = [];
  list.forEach((source, i) => {
    try {
      out.push(parseObjectPattern(source));
    } catch (err) {
      problems.push({ path: `${path}.${i}`, message: `not a valid name pattern: ${(err as Error).message}` });
    }
  });
  return out;
};

const regexOrProblem = (source: string | undefined, path: string, problems: FieldProblem[]): RegExp | undefined => {
  if (source === undefined) return undefined;
  try {
    return compileAdminRegex(source);
  } catch (err) {
    problems.push({ path, message: (err as Error).message });
    return undefined;
  }
};

const prepareSqlRule = (rule: SqlRule, ref: RuleRef, path: string, problems: FieldProblem[]): PreparedSqlRule => {
  const kinds = rule.kinds;
  if (kinds !== undefined) {
    if (rule.relations !== undefined && kinds.every((k) => KINDS_WITHOUT_RELATIONS.has(k))) {
      problems.push({ path: `${path}.relations`, message: `statements of kind ${kindList(kinds)} never touch relations, so this condition cannot apply; remove it or add a kind that does` });
    }
    if (rule.functions !== undefined && kinds.every((k) => KINDS_WITHOUT_FUNCTIONS.has(k))) {
      problems.push({ path: `${path}.functions`, message: `statements of kind ${kindList(kinds)} never call functions the engine can see, so this condition cannot apply` });
    }
    if (rule.settings !== undefined && !kinds.some((k) => KINDS_WITH_SETTINGS.has(k))) {
      problems.push({ path: `${path}.settings`, message: `settings apply to kinds set, reset, show and ddl; kind ${kindList(kinds)} has none, so this condition cannot apply` });
    }
  }
  const settings = rule.settings?.map((s, i) => {
    if (!/^[A-Za-z0-9_.*]+$/.test(s)) problems.push({ path: `${path}.settings.${i}`, message: 'a setting pattern is a name such as `search_path` or `app.*` (letters, digits, _ . and *)' });
    return globToRegExp(s.toLowerCase());
  });
  return {
    type: 'sql',
    effect: rule.effect,
    ref,
    kinds: kinds === undefined ? undefined : new Set(kinds),
    relations: objectPatterns(rule.relations, `${path}.relations`, problems),
    functions: objectPatterns(rule.functions, `${path}.functions`, problems),
    settings,
    fingerprints: rule.fingerprints === undefined ? undefined : new Set(rule.fingerprints),
    pattern: regexOrProblem(rule.pattern, `${path}.pattern`, problems),
  };
};

const prepareHttpRule = (rule: HttpRule, ref: RuleRef, path: string, problems: FieldProblem[]): PreparedHttpRule => {
  const methods = rule.methods;
  if (methods !== undefined && !methods.includes('*') && methods.every((m) => m === 'CONNECT')) {
    problems.push({ path: `${path}.methods`, message: 'CONNECT requests carry authority-form targets, which the proxy refuses, so this rule can never match' });
  }
  const paths = rule.paths?.map((glob, i) => {
    const problem = pathGlobProblem(glob);
    if (problem !== undefined) problems.push({ path: `${path}.paths.${i}`, message: problem });
    return compilePathGlob(glob);
  });
  const conditions = (record: Readonly<Record<string, string>> | undefined, field: 'query' | 'headers'): Array<readonly [string, RegExp]> =>
    Object.entries(record ?? {}).flatMap(([name, source]) => {
      if (field === 'headers') {
        if (!HEADER_NAME.test(name)) problems.push({ path: `${path}.headers.${name}`, message: 'not a valid header name' });
        else if (name.includes('_')) problems.push({ path: `${path}.headers.${name}`, message: 'the proxy refuses headers with underscores, so this condition can never hold' });
      }
      const re = regexOrProblem(source, `${path}.${field}.${name}`, problems);
      return re === undefined ? [] : [[field === 'headers' ? name.toLowerCase() : name, re] as const];
    });
  return {
    type: 'http',
    effect: rule.effect,
    ref,
    methods: methods === undefined || methods.includes('*') ? undefined : new Set(methods),
    paths,
    pathRegex: regexOrProblem(rule.pathRegex, `${path}.pathRegex`, problems),
    query: conditions(rule.query, 'query'),
    headers: conditions(rule.headers, 'headers'),
  };
};

/**
 * Compiles one rule into its evaluable form, pushing every problem found into
 * `problems` (paths below `path`, e.g. `rules.3.pattern`). This is the code
 * both the compiler and the control plane's validation run, so a rule that
 * validates is a rule the engine can use.
 */
export const prepareRule = (rule: Rule, ref: RuleRef, path: string, problems: FieldProblem[]): PreparedRule => {
  switch (rule.type) {
    case 'sql':
      return prepareSqlRule(rule, ref, path, problems);
    case 'http':
      return prepareHttpRule(rule, ref, path, problems);
    case 'all':
      return { type: 'all', effect: rule.effect, ref };
  }
};
