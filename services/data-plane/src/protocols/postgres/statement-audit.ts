import { createHash, hash } from 'node:crypto';
import { decisionOrigin, type SqlDecision } from '@pa/policy';

/**
 * What the audit trail records about a statement (STYLE.md §6, SECURITY.md
 * "Audit"): the SQL text capped at {@link MAX_AUDIT_SQL_BYTES} with the
 * SHA-256 of the whole text, and the policy engine's facts (kinds, relations,
 * functions, fingerprints, the deciding rule and its reason). Parameter values
 * are never stored: a Bind is recorded by the SHA-256 of its values.
 */

/** Longest SQL text stored in an audit record (UTF-8 bytes); longer texts are cut and flagged. */
export const MAX_AUDIT_SQL_BYTES = 4096;

/** The audit facts of one judged SQL text, computed once per decision. */
export interface StatementSummary {
  readonly sql: string;
  readonly sqlSha256: string;
  readonly sqlBytes: number;
  readonly sqlTruncated: boolean;
  readonly statements: number;
  readonly kinds: readonly string[];
  readonly relations: readonly string[];
  readonly functions: readonly string[];
  readonly fingerprints: readonly string[];
  readonly allowed: boolean;
  readonly reason: string;
  readonly rule: { readonly policyId: string; readonly policyName: string; readonly ruleId: string; readonly ruleName: string | null } | null;
  readonly failure: string | null;
}

/** Cuts `text` to at most `maxBytes` of UTF-8 without splitting a character. */
export const capUtf8 = (text: string, maxBytes: number): { readonly text: string; readonly bytes: number; readonly truncated: boolean } => {
  // Fast path: every UTF-16 unit is at most 3 UTF-8 bytes.
  if (text.length * 3 <= maxBytes) return { text, bytes: Buffer.byteLength(text, 'utf8'), truncated: false };
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxBytes) return { text, bytes, truncated: false };
  let cut = Buffer.from(text, 'utf8').subarray(0, maxBytes).toString('utf8');
  // A character cut in the middle decodes as U+FFFD: drop it.
  if (cut.endsWith('\uFFFD') && !text.startsWith(cut)) cut = cut.slice(0, -1);
  return { text: cut, bytes, truncated: true };
};

const unique = (lists: Iterable<readonly string[]>): string[] => {
  const seen = new Set<string>();
  for (const list of lists) for (const v of list) seen.add(v);
  return [...seen];
};

/** The parts of a summary that depend on the decision's facts, not on the text. */
type StatementFacts = Omit<StatementSummary, 'sql' | 'sqlSha256' | 'sqlBytes' | 'sqlTruncated'>;

const factsByDecision = new WeakMap<SqlDecision, StatementFacts>();
const summaries = new WeakMap<SqlDecision, { readonly text: string; readonly summary: StatementSummary }>();

const factsOf = (decision: SqlDecision): StatementFacts => {
  const hit = factsByDecision.get(decision);
  if (hit) return hit;
  const rule = decision.rule;
  const facts: StatementFacts = Object.freeze({
    statements: decision.statements.length,
    kinds: unique(decision.statements.map((s) => s.kinds)),
    relations: unique(decision.statements.map((s) => s.relations)),
    functions: unique(decision.statements.map((s) => s.functions)),
    fingerprints: decision.statements.map((s) => s.fingerprint),
    allowed: decision.allowed,
    reason: decision.reason,
    rule: rule ? { policyId: rule.policyId, policyName: rule.policyName, ruleId: rule.ruleId, ruleName: rule.ruleName ?? null } : null,
    failure: decision.failure ?? null,
  });
  factsByDecision.set(decision, facts);
  return facts;
};

/**
 * The audit summary of `sql` as judged by `decision`. The engine's decision
 * cache hands out one frozen decision object per (policy, text), so the
 * summary is computed once per distinct text; the facts (unions of kinds,
 * relations, functions…) once per shape, since texts that differ only in
 * constants share their decision's origin ({@link decisionOrigin}) — pgbench
 * never repeats a text, but its texts have one shape.
 */
export const summarizeStatement = (sql: string, decision: SqlDecision): StatementSummary => {
  const hit = summaries.get(decision);
  // The text is compared too, in case an engine ever shares one decision object between texts.
  if (hit && hit.text === sql) return hit.summary;
  const capped = capUtf8(sql, MAX_AUDIT_SQL_BYTES);
  const summary: StatementSummary = Object.freeze({
    sql: capped.text,
    sqlSha256: sha256Hex(sql),
    sqlBytes: capped.bytes,
    sqlTruncated: capped.truncated,
    ...factsOf(decisionOrigin(decision)),
  });
  summaries.set(decision, { text: sql, summary });
  return summary;
};

/** SHA-256 of a text's UTF-8, in hex (the one-shot `crypto.hash`: a third of createHash's cost for short texts). */
const sha256Hex = (text: string): string => hash('sha256', text, 'hex');

/** SHA-256 of Bind parameter values (each length-prefixed, NULL as -1), so equal values can be correlated without storing them. */
export const hashParameters = (params: readonly (Buffer | null)[]): string => {
  const h = createHash('sha256');
  const len = Buffer.allocUnsafe(4);
  for (const p of params) {
    len.writeInt32BE(p === null ? -1 : p.length, 0);
    h.update(len);
    if (p !== null) h.update(p);
  }
  return h.digest('hex');
};

/**
 * Rows reported by a CommandComplete tag: the last number of `SELECT n`,
 * `INSERT 0 n`, `UPDATE n`, `DELETE n`, `COPY n`, `FETCH n`, `MOVE n`,
 * `MERGE n`; null for tags without a count.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COMMANDCOMPLETE
 */
export const rowsOfTag = (tag: string): number | null => {
  const space = tag.lastIndexOf(' ');
  if (space < 0) return null;
  const verb = tag.slice(0, tag.indexOf(' '));
  if (!ROW_TAGS.has(verb)) return null;
  const n = Number(tag.slice(space + 1));
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
};

const ROW_TAGS = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'COPY', 'FETCH', 'MOVE', 'MERGE']);
