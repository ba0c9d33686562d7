import { AppError, newId, type FieldProblem } from '@pa/kit';
import type { PolicyDocument } from '@pa/policy';
import type { Database, Queryable } from '../../db/pool';
import { actorOf, type AuditLog } from '../audit/audit-log';
import { decodeCursor, pageById, type Page } from '../pagination';
import type { Principal, RequestMeta } from '../permissions';
import type { RoleService } from '../roles/roles';

export interface Policy extends PolicyDocument {
  id: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  id: string;
  name: string;
  description: string;
  enabled: boolean;
  roles: string[];
  selector: PolicyDocument['selector'];
  rules: PolicyDocument['rules'];
  version: number;
  created_at: Date;
  updated_at: Date;
}

const toPolicy = (r: Row): Policy => ({
  id: r.id,
  name: r.name,
  description: r.description,
  enabled: r.enabled,
  roles: r.roles,
  selector: r.selector,
  rules: r.rules,
  version: r.version,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

/**
 * Checks a policy document beyond its shape (the engine's own rule checks);
 * returns problems with paths into the document. Injected so the control plane
 * validates with the same code that compiles.
 */
export type PolicyValidator = (doc: PolicyDocument) => FieldProblem[];

/** Gives every rule a stable id (`r1`, `r2`, … for those without one) and refuses duplicates. */
const assignRuleIds = (doc: PolicyDocument): PolicyDocument => {
  const seen = new Set<string>();
  const problems: FieldProblem[] = [];
  doc.rules.forEach((r, i) => {
    if (r.id && seen.has(r.id)) problems.push({ path: `rules.${i}.id`, message: `duplicate rule id "${r.id}"` });
    if (r.id) seen.add(r.id);
  });
  if (problems.length) throw new AppError('POLICY_INVALID', { details: problems });
  let n = 0;
  const next = (): string => {
    do n += 1;
    while (seen.has(`r${n}`));
    seen.add(`r${n}`);
    return `r${n}`;
  };
  return { ...doc, rules: doc.rules.map((r) => (r.id ? r : { ...r, id: next() })) };
};

/**
 * Policies (whitelists): roles × connections by tag selector × rules. Every
 * edit increments `version`; an `If-Match` version guards concurrent edits.
 */
export class PolicyService {
  constructor(
    private readonly db: Database,
    private readonly roles: RoleService,
    private readonly audit: AuditLog,
    private readonly validate: PolicyValidator,
  ) {}

  async list(limit: number, cursor?: string): Promise<Page<Policy>> {
    const after = cursor ? decodeCursor(cursor, ['id']).id : '';
    const { rows } = await this.db.query<Row>('SELECT * FROM policies WHERE id > $1 ORDER BY id LIMIT $2', [after, limit + 1]);
    return pageById(rows.map(toPolicy), limit);
  }

  async get(idOrName: string, tx: Queryable = this.db): Promise<Policy> {
    const { rows } = await tx.query<Row>('SELECT * FROM policies WHERE id = $1 OR lower(name) = lower($1)', [idOrName]);
    const row = rows[0];
    if (!row) throw new AppError('POLICY_NOT_FOUND');
    return toPolicy(row);
  }

  /** Every stored policy (the compiler picks the enabled ones bound to the roles). */
  async all(): Promise<Policy[]> {
    const { rows } = await this.db.query<Row>('SELECT * FROM policies ORDER BY id');
    return rows.map(toPolicy);
  }

  /** Enabled policies bound to any of `roles` (case-insensitive names). */
  async forRoles(roles: readonly string[]): Promise<Policy[]> {
    if (roles.length === 0) return [];
    const { rows } = await this.db.query<Row>(
      `SELECT * FROM policies WHERE enabled AND EXISTS (SELECT 1 FROM unnest(roles) r WHERE lower(r) = ANY($1)) ORDER BY id`,
      [roles.map((r) => r.toLowerCase())],
    );
    return rows.map(toPolicy);
  }

  /** Validates a document completely (roles exist, rules understood) without saving it. */
  async check(doc: PolicyDocument, tx: Queryable = this.db): Promise<PolicyDocument> {
    const withIds = assignRuleIds(doc);
    const problems = [...this.validate(withIds)];
    try {
      await this.roles.resolveNames(withIds.roles, 'roles', tx);
    } catch (err) {
      if (err instanceof AppError && err.code === 'VALIDATION_FAILED') problems.push(...err.details);
      else throw err;
    }
    if (problems.length) throw new AppError('POLICY_INVALID', { details: problems });
    return withIds;
  }

  async create(doc: PolicyDocument, actor: Principal, meta: RequestMeta): Promise<Policy> {
    return this.db.transaction(async (tx) => {
      const checked = await this.check(doc, tx);
      const id = newId('wl');
      await tx.query(
        `INSERT INTO policies (id, name, description, enabled, roles, selector, rules) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [id, checked.name, checked.description, checked.enabled, checked.roles, JSON.stringify(checked.selector), JSON.stringify(checked.rules)],
      );
      const after = await this.get(id, tx);
      await this.audit.record({ action: 'policy.create', outcome: 'success', actor: actorOf(actor), targetType: 'policy', targetId: id, request: meta, details: { after } }, tx);
      return after;
    });
  }

  /** Replaces a policy's document; `expectedVersion` (If-Match) guards against lost updates. */
  async replace(idOrName: string, doc: PolicyDocument, actor: Principal, meta: RequestMeta, expectedVersion?: number): Promise<Policy> {
    return this.db.transaction(async (tx) => {
      const before = await this.get(idOrName, tx);
      if (expectedVersion !== undefined && expectedVersion !== before.version) {
        throw new AppError('PRECONDITION_FAILED', { meta: { currentVersion: before.version } });
      }
      const checked = await this.check(doc, tx);
      await tx.query(
        `UPDATE policies SET name = $2, description = $3, enabled = $4, roles = $5, selector = $6, rules = $7,
           version = version + 1, updated_at = now() WHERE id = $1`,
        [before.id, checked.name, checked.description, checked.enabled, checked.roles, JSON.stringify(checked.selector), JSON.stringify(checked.rules)],
      );
      const after = await this.get(before.id, tx);
      await this.audit.record({ action: 'policy.update', outcome: 'success', actor: actorOf(actor), targetType: 'policy', targetId: before.id, request: meta, details: { before, after } }, tx);
      return after;
    });
  }

  async delete(idOrName: string, actor: Principal, meta: RequestMeta): Promise<void> {
    await this.db.transaction(async (tx) => {
      const before = await this.get(idOrName, tx);
      await tx.query('DELETE FROM policies WHERE id = $1', [before.id]);
      await this.audit.record({ action: 'policy.delete', outcome: 'success', actor: actorOf(actor), targetType: 'policy', targetId: before.id, request: meta, details: { before } }, tx);
    });
  }
}
