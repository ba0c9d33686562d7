import { compilePolicy, type CompiledPolicy } from '../compile';
import type { Rule } from '../schema';
import { fingerprintSql } from '../sql/fingerprint';
import { CORPUS_POLICIES, type CorpusPolicy, type CorpusPolicyName } from './policies';

const compiled = new Map<CorpusPolicyName, CompiledPolicy>();

/** Rules of a corpus policy with `fingerprintsOf` resolved (needs initPolicyEngine). */
const resolveRules = (p: CorpusPolicy): Rule[] =>
  p.rules.map((rule, i) => {
    const examples = p.fingerprintsOf?.[i];
    return examples && rule.type === 'sql' ? { ...rule, fingerprints: examples.map(fingerprintSql) } : rule;
  });

/**
 * The corpus policy `name`, compiled by the engine's compiler as the control
 * plane would: one stored policy bound to role `corpus`, selected by name.
 */
export const corpusPolicy = (name: CorpusPolicyName): CompiledPolicy => {
  const hit = compiled.get(name);
  if (hit) return hit;
  const p: CorpusPolicy = CORPUS_POLICIES[name];
  const policy = compilePolicy({
    roles: ['corpus'],
    connection: { name: 'corpus-conn', tags: { env: 'test' }, protocol: p.protocol, ...(p.searchPath ? { searchPath: p.searchPath } : {}) },
    policies: [{ id: `pol_${name}`, version: 1, name, roles: ['corpus'], selector: { match: 'all', tags: { env: 'test' }, connections: [] }, rules: resolveRules(p) }],
  });
  compiled.set(name, policy);
  return policy;
};
