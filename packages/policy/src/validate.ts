import { z } from 'zod';
import type { FieldProblem } from '@pa/kit';
import { policyDocumentSchema, ruleSchema, type PolicyDocument } from './schema';
import { prepareRule } from './rules';

const sortProblems = (problems: FieldProblem[]): FieldProblem[] =>
  problems.sort((a, b) => (a.path === b.path ? a.message.localeCompare(b.message) : a.path.localeCompare(b.path)));

const issuesToProblems = (err: z.ZodError, prefix: string): FieldProblem[] =>
  err.issues.map((i) => ({ path: [prefix, ...i.path.map(String)].filter((s) => s !== '').join('.'), message: i.message }));

/**
 * Validates rules as the control plane receives them (any JSON), with the
 * same code the compiler runs: shape first, then what the engine needs (valid
 * and safe regexes, globs that can match a normalised path, name patterns,
 * conditions that can apply to the rule's kinds, unique ids). Problems are
 * sorted, with paths such as `rules.3.pattern`.
 */
export const validateRules = (rules: unknown, pathPrefix = 'rules'): FieldProblem[] => {
  const list = z.array(z.unknown()).min(1).max(500).safeParse(rules);
  if (!list.success) return sortProblems(issuesToProblems(list.error, pathPrefix));
  const problems: FieldProblem[] = [];
  const ids = new Map<string, number>();
  list.data.forEach((raw, i) => {
    const path = `${pathPrefix}.${i}`;
    const parsed = ruleSchema.safeParse(raw);
    if (!parsed.success) {
      problems.push(...issuesToProblems(parsed.error, path));
      return;
    }
    const rule = parsed.data;
    if (rule.id !== undefined) {
      const seen = ids.get(rule.id);
      if (seen !== undefined) problems.push({ path: `${path}.id`, message: `duplicate rule id (also ${pathPrefix}.${seen})` });
      else ids.set(rule.id, i);
    }
    prepareRule(rule, { policyId: '', policyName: '', ruleId: rule.id ?? `#${i}`, ruleName: rule.name }, path, problems);
  });
  return sortProblems(problems);
};

/** The result of {@link validatePolicyDocument}. */
export type PolicyValidation =
  | { readonly ok: true; readonly policy: PolicyDocument }
  | { readonly ok: false; readonly problems: readonly FieldProblem[] };

/**
 * Validates a whole policy document (any JSON): its shape, then its rules with
 * {@link validateRules}. Returns the parsed document (defaults applied).
 */
export const validatePolicyDocument = (doc: unknown): PolicyValidation => {
  const { rules, ...rest } = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : { rules: undefined };
  const shape = policyDocumentSchema.omit({ rules: true }).safeParse(typeof doc === 'object' && doc !== null ? rest : doc);
  const problems = shape.success ? [] : issuesToProblems(shape.error, '');
  problems.push(...validateRules(rules));
  if (problems.length > 0) return { ok: false, problems: sortProblems(problems) };
  const parsed = policyDocumentSchema.safeParse(doc);
  return parsed.success ? { ok: true, policy: parsed.data } : { ok: false, problems: sortProblems(issuesToProblems(parsed.error, '')) };
};
