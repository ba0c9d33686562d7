import type { FieldProblem } from '@pa/kit';
import { validateRules, type PolicyDocument } from '@pa/policy';

/**
 * Validates a policy document's rules with the policy engine's own code (the
 * code that compiles them), so a rule the engine cannot use never gets stored.
 * Paths point into the document (`rules.3.pattern`).
 */
export const validatePolicyDocument = (doc: PolicyDocument): FieldProblem[] => validateRules(doc.rules);
