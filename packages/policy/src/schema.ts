import { z } from 'zod';

/**
 * The policy document language, shared by the control plane (which stores and
 * validates policies) and the engine (which compiles and enforces them).
 *
 * A policy binds roles to connections chosen by a tag selector and carries
 * rules. Rules allow or deny; deny wins; nothing is allowed unless a rule
 * allows it.
 */

/** Statement kinds a SQL rule can name. The engine maps every parse-tree node to one of these. */
export const STATEMENT_KINDS = [
  'select',
  'insert',
  'update',
  'delete',
  'merge',
  'copy_to',
  'copy_from',
  'ddl',
  'truncate',
  'grant',
  'transaction',
  'set',
  'show',
  'reset',
  'call',
  'do',
  'explain',
  'prepare',
  'execute',
  'deallocate',
  'listen',
  'notify',
  'unlisten',
  'vacuum',
  'analyze',
  'lock',
  'discard',
  'cursor',
  'function_call',
  'utility',
] as const;
export type StatementKind = (typeof STATEMENT_KINDS)[number];

export const PROTOCOLS = ['postgres', 'http', 'tcp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', '*'] as const;

const ruleBase = {
  /** Stable id within the policy; assigned by the control plane when absent. */
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/i).optional(),
  /** Human name shown in decisions and audit records. */
  name: z.string().trim().min(1).max(120).optional(),
  description: z.string().max(1000).optional(),
  effect: z.enum(['allow', 'deny']),
};

/** Matches everything on any protocol (the explicit "allow all" or "deny all"). */
export const allRuleSchema = z.strictObject({ ...ruleBase, type: z.literal('all') });

/** Object name pattern: `name`, `schema.name`, with `*` wildcards (`public.*`, `*.audit_*`). */
const objectPattern = z.string().trim().min(1).max(200).regex(/^[A-Za-z0-9_$*."-]+$/, 'only letters, digits, _ $ " - . and * wildcards');

export const sqlRuleSchema = z.strictObject({
  ...ruleBase,
  type: z.literal('sql'),
  /** Statement kinds this rule covers; absent means any kind. */
  kinds: z.array(z.enum(STATEMENT_KINDS)).min(1).optional(),
  /** Relation patterns; every relation a statement reads or writes is checked. */
  relations: z.array(objectPattern).min(1).optional(),
  /** Function patterns; every function a statement calls is checked. */
  functions: z.array(objectPattern).min(1).optional(),
  /** Setting names (for `set`/`reset`/`show`), `*` wildcards allowed. */
  settings: z.array(objectPattern).min(1).optional(),
  /** libpg-query fingerprints: the same query with other constants. */
  fingerprints: z.array(z.string().regex(/^[0-9a-f]{16}$/, 'a 16-hex-digit libpg-query fingerprint')).min(1).optional(),
  /**
   * Regular expression on the normalised statement text (compatibility with the
   * original port-authorizing whitelists). Always combined with the tree checks.
   */
  pattern: z.string().min(1).max(2000).optional(),
});

export const httpRuleSchema = z.strictObject({
  ...ruleBase,
  type: z.literal('http'),
  /** Methods, upper case; `*` for any. Absent means any. */
  methods: z.array(z.enum(HTTP_METHODS)).min(1).optional(),
  /** Glob patterns on the normalised path: `*` within a segment, `**` across segments. */
  paths: z.array(z.string().min(1).max(2000).startsWith('/')).min(1).optional(),
  /** Regular expression on the normalised path. */
  pathRegex: z.string().min(1).max(2000).optional(),
  /** Query parameter conditions: parameter name → regular expression its value must match. */
  query: z.record(z.string().min(1).max(200), z.string().max(2000)).optional(),
  /** Header conditions: header name (case-insensitive) → regular expression. */
  headers: z.record(z.string().min(1).max(200), z.string().max(2000)).optional(),
});

export const ruleSchema = z.discriminatedUnion('type', [allRuleSchema, sqlRuleSchema, httpRuleSchema]);
export type Rule = z.infer<typeof ruleSchema>;
export type SqlRule = z.infer<typeof sqlRuleSchema>;
export type HttpRule = z.infer<typeof httpRuleSchema>;
export type AllRule = z.infer<typeof allRuleSchema>;

const tagKey = z.string().trim().min(1).max(63).regex(/^[A-Za-z0-9_.\-/]+$/);
const tagValue = z.string().max(255);

/** Tags on a connection, `key=value`. */
export const tagsSchema = z.record(tagKey, tagValue);
export type Tags = z.infer<typeof tagsSchema>;

/**
 * Which connections a policy covers: those whose tags match the selector (all
 * of them, or any of them, as in the original port-authorizing), plus any
 * connections named explicitly. A selector with no tags and no names matches nothing.
 */
export const selectorSchema = z.strictObject({
  match: z.enum(['all', 'any']).default('all'),
  tags: tagsSchema.default({}),
  connections: z.array(z.string().min(1).max(63)).default([]),
});
export type Selector = z.infer<typeof selectorSchema>;

/** The body of a policy as an admin writes it. */
export const policyDocumentSchema = z.strictObject({
  name: z.string().trim().min(1).max(63).regex(/^[a-z0-9][a-z0-9_.-]*$/i, 'letters, digits, _ . - and starting with a letter or digit'),
  description: z.string().max(1000).default(''),
  enabled: z.boolean().default(true),
  /** Role names this policy applies to. */
  roles: z.array(z.string().min(1).max(63)).min(1),
  selector: selectorSchema,
  rules: z.array(ruleSchema).min(1).max(500),
});
export type PolicyDocument = z.infer<typeof policyDocumentSchema>;
export type PolicyDocumentInput = z.input<typeof policyDocumentSchema>;
