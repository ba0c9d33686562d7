import { AppError } from '@pa/kit';
import { compilePolicy, explainHttp, explainSql, type CompiledPolicy, type PolicyDocument, type StoredPolicy } from '@pa/policy';
import type { ConnectionService } from '../connections/connections';
import type { RoleService } from '../roles/roles';
import type { UserService } from '../users/users';
import type { PolicyService } from './policies';

export interface ExplainInput {
  connection: string;
  user?: string;
  roles?: string[];
  sql?: string;
  http?: { method: string; target: string; headers?: Record<string, string> };
  /** Unsaved documents: each replaces the stored policy of the same name, or is added (dry run). */
  drafts?: PolicyDocument[];
}

/**
 * "Explain": compiles the effective policy of a user (or a set of roles) for
 * one connection exactly as a grant would carry it, and evaluates SQL or an
 * HTTP request with the same engine the data plane enforces with.
 */
export class PolicyExplainer {
  constructor(
    private readonly policies: PolicyService,
    private readonly connections: ConnectionService,
    private readonly users: UserService,
    private readonly roles: RoleService,
  ) {}

  /** The compiled policy of `roles` for a connection (also used when issuing grants). */
  async compileFor(roles: readonly string[], connection: { name: string; tags: Record<string, string>; protocol: 'postgres' | 'http' | 'tcp' }, drafts: PolicyDocument[] = []): Promise<CompiledPolicy> {
    const stored = await this.policies.all();
    const draftNames = new Set(drafts.map((d) => d.name.toLowerCase()));
    const checkedDrafts: StoredPolicy[] = [];
    for (const [i, d] of drafts.entries()) {
      try {
        const checked = await this.policies.check(d);
        const prior = stored.find((p) => p.name.toLowerCase() === d.name.toLowerCase());
        checkedDrafts.push({ ...checked, id: prior?.id ?? `draft_${i}`, version: (prior?.version ?? 0) + 1 });
      } catch (err) {
        if (err instanceof AppError && err.code === 'POLICY_INVALID') {
          throw new AppError('POLICY_INVALID', { details: err.details.map((p) => ({ ...p, path: `drafts.${i}.${p.path}` })) });
        }
        throw err;
      }
    }
    const effective: StoredPolicy[] = [
      ...stored.filter((p) => !draftNames.has(p.name.toLowerCase())).map(({ createdAt: _c, updatedAt: _u, ...p }) => p),
      ...checkedDrafts,
    ];
    return compilePolicy({ policies: effective, roles: [...roles], connection });
  }

  async explain(input: ExplainInput) {
    const connection = await this.connections.get(input.connection);
    let roles: string[];
    let subject: { user: string | null; roles: string[] };
    if (input.user) {
      const user = await this.users.get(input.user);
      roles = user.roles;
      subject = { user: user.username, roles };
    } else {
      roles = (await this.roles.resolveNames(input.roles ?? [], 'body.roles')).map((r) => r.name);
      subject = { user: null, roles };
    }
    if (input.sql !== undefined && connection.protocol !== 'postgres') {
      throw new AppError('VALIDATION_FAILED', { details: [{ path: 'body.sql', message: `connection ${connection.name} speaks ${connection.protocol}, not postgres` }] });
    }
    if (input.http && connection.protocol !== 'http') {
      throw new AppError('VALIDATION_FAILED', { details: [{ path: 'body.http', message: `connection ${connection.name} speaks ${connection.protocol}, not http` }] });
    }
    const compiled = await this.compileFor(roles, { name: connection.name, tags: connection.tags, protocol: connection.protocol }, input.drafts ?? []);
    const policy = { hash: compiled.hash, policies: compiled.policies, rules: compiled.rules.length };
    if (input.sql !== undefined) {
      const d = explainSql(compiled, input.sql);
      return { decision: d.allowed ? 'allow' : 'deny', reason: d.reason, rule: d.rule ?? null, statements: d.statements, ...(d.failure ? { failure: d.failure } : {}), subject, connection: connection.name, policy };
    }
    const http = input.http as NonNullable<ExplainInput['http']>;
    const d = explainHttp(compiled, { method: http.method, target: http.target, headers: http.headers ?? {} });
    return { decision: d.allowed ? 'allow' : 'deny', reason: d.reason, rule: d.rule ?? null, target: d.target, method: d.method, trace: d.trace, subject, connection: connection.name, policy };
  }
}
