import type { FieldProblem } from '@pa/kit';
import type { PolicyDocument } from '@pa/policy';

/**
 * Validates a policy document with the policy engine's own checks, so a rule
 * the engine cannot use never gets stored. Paths point into the document.
 */
export const validatePolicyDocument = (doc: PolicyDocument): FieldProblem[] => {
  const problems: FieldProblem[] = [];
  doc.rules.forEach((rule, i) => {
    const regexes: Array<[string, string | undefined]> =
      rule.type === 'sql' ? [['pattern', rule.pattern]] : rule.type === 'http' ? [['pathRegex', rule.pathRegex], ...Object.entries(rule.query ?? {}).map(([k, v]) => [`query.${k}`, v] as [string, string]), ...Object.entries(rule.headers ?? {}).map(([k, v]) => [`headers.${k}`, v] as [string, string])] : [];
    for (const [field, source] of regexes) {
      if (source === undefined) continue;
      try {
        new RegExp(source, 'u');
      } catch (err) {
        problems.push({ path: `rules.${i}.${field}`, message: `not a valid regular expression: ${(err as Error).message}` });
      }
    }
  });
  return problems;
};
