import { AppError, newId } from '@pa/kit';
import { encryptCredentials, MAX_GRANT_TTL_SECONDS, signGrant } from '@pa/grants';
import type { RevocationStore } from '@pa/state';
import type { Database, Queryable } from '../../db/pool';
import { actorOf, type AuditLog } from '../audit/audit-log';
import type { KeyRing } from '../auth/key-ring';
import type { ConnectionService } from '../connections/connections';
import type { NodeRegistry } from '../nodes/nodes';
import { decodeCursor, pageById, type Page } from '../pagination';
import type { Principal, RequestMeta } from '../permissions';
import type { PolicyExplainer } from '../policies/explain';

export interface GrantSettings {
  issuer: string;
  defaultTtlSeconds: number;
  maxConnectionsPerSession: number;
  idleTimeoutSeconds: number;
}

export interface IssuedGrant {
  token: string;
  grantId: string;
  expiresAt: Date;
  renewAt: Date;
  protocol: 'postgres' | 'http' | 'tcp';
  tunnelUrls: string[];
  connectionId: string;
  connectionName: string;
  sessionId: string;
  sessionEndsAt: Date;
}

/** A grant as the admin API lists it (never the token). */
export interface GrantRecord {
  id: string;
  userId: string;
  username: string;
  connectionId: string;
  connectionName: string;
  sessionId: string;
  policyHash: string;
  issuedAt: string;
  expiresAt: string;
  sessionEndsAt: string;
  renewedFrom: string | null;
  revokedAt: string | null;
  revokeReason: string | null;
  active: boolean;
}

interface Row {
  id: string;
  user_id: string;
  username: string;
  connection_id: string;
  connection_name: string;
  session_id: string;
  login_session_id: string | null;
  policy_hash: string;
  policy_version: number;
  issued_at: Date;
  expires_at: Date;
  session_ends_at: Date;
  renewed_from: string | null;
  revoked_at: Date | null;
  revoked_by: string | null;
  revoke_reason: string | null;
}

export interface GrantDeps {
  db: Database;
  connections: ConnectionService;
  explainer: PolicyExplainer;
  grantKeys: KeyRing;
  nodeKeys: KeyRing;
  nodes: NodeRegistry;
  revocations: RevocationStore;
  audit: AuditLog;
  settings: GrantSettings;
  clock?: () => Date;
}

const REVOCATION_MARGIN_SECONDS = 300;

/**
 * Grants: issued to authenticated users for one connection, checked against
 * their policies, signed for the data plane, renewable until the session's
 * absolute end, listed and revoked by admins. Revocation is published to every
 * data-plane node (through the shared revocation store) so live tunnels close.
 */
export class GrantService {
  private readonly clock: () => Date;

  constructor(private readonly d: GrantDeps) {
    this.clock = d.clock ?? (() => new Date());
  }

  private toRecord(r: Row): GrantRecord {
    const now = this.clock().getTime();
    return {
      id: r.id,
      userId: r.user_id,
      username: r.username,
      connectionId: r.connection_id,
      connectionName: r.connection_name,
      sessionId: r.session_id,
      policyHash: r.policy_hash,
      issuedAt: r.issued_at.toISOString(),
      expiresAt: r.expires_at.toISOString(),
      sessionEndsAt: r.session_ends_at.toISOString(),
      renewedFrom: r.renewed_from,
      revokedAt: r.revoked_at ? r.revoked_at.toISOString() : null,
      revokeReason: r.revoke_reason,
      active: !r.revoked_at && r.expires_at.getTime() > now,
    };
  }

  async issue(p: Principal, connectionName: string, requestedTtl: number, meta: RequestMeta): Promise<IssuedGrant> {
    return this.sign(p, connectionName, requestedTtl, meta, null);
  }

  /**
   * Renews a grant of the caller's: same session, the policy as it is now. If
   * the policy changed, tunnels opened under the old grant are closed so that
   * enforcement follows the current policy.
   */
  async renew(p: Principal, ref: { grantId?: string; grantToken?: string }, requestedTtl: number, meta: RequestMeta): Promise<IssuedGrant> {
    const grantId = ref.grantId ?? grantIdFromToken(ref.grantToken ?? '');
    const { rows } = await this.d.db.query<Row>('SELECT * FROM grants WHERE id = $1', [grantId]);
    const prior = rows[0];
    if (!prior || prior.user_id !== p.userId) throw new AppError('GRANT_NOT_FOUND');
    const refuse = async (code: 'GRANT_REVOKED' | 'GRANT_EXPIRED', message: string) => {
      await this.d.audit.recordSafely({ action: 'grant.renew', outcome: 'denied', actor: actorOf(p), targetType: 'grant', targetId: prior.id, connectionId: prior.connection_id, grantId: prior.id, sessionId: prior.session_id, request: meta, details: { reason: message } });
      return new AppError(code, { message });
    };
    if (prior.revoked_at) throw await refuse('GRANT_REVOKED', `This grant was revoked (${prior.revoke_reason ?? 'revoked'}).`);
    if (prior.session_ends_at.getTime() <= this.clock().getTime()) throw await refuse('GRANT_EXPIRED', 'The session has reached its absolute end; connect again.');
    return this.sign(p, prior.connection_id, requestedTtl, meta, prior);
  }

  private async sign(p: Principal, connectionRef: string, requestedTtl: number, meta: RequestMeta, prior: Row | null): Promise<IssuedGrant> {
    const action = prior ? 'grant.renew' : 'grant.issue';
    const deny = async (reason: string, err: AppError) => {
      await this.d.audit.recordSafely({ action, outcome: 'denied', actor: actorOf(p), targetType: 'connection', request: meta, ...(prior ? { grantId: prior.id, sessionId: prior.session_id, connectionId: prior.connection_id } : {}), details: { connection: connectionRef, reason } });
      return err;
    };
    let connection;
    try {
      connection = await this.d.connections.get(connectionRef);
    } catch (err) {
      if (err instanceof AppError && err.code === 'CONNECTION_NOT_FOUND') throw await deny('unknown connection', notReachable(connectionRef));
      throw err;
    }
    const policy = await this.d.explainer.compileFor(p.roles, { name: connection.name, tags: connection.tags, protocol: connection.protocol });
    if (!policy.rules.some((r) => r.rule.effect === 'allow')) {
      if (prior) {
        await this.revokeSession(prior.session_id, 'access withdrawn by policy', null);
        throw await deny('no policy allows this connection any more', new AppError('GRANT_REVOKED', { message: `Your access to ${connection.name} was withdrawn by policy.` }));
      }
      // The name as asked (not the stored spelling): the answer must not tell an existing connection from a missing one.
      throw await deny('no policy allows this connection', notReachable(connectionRef));
    }
    const tunnelUrls = await this.d.nodes.tunnelUrls(connection.protocol);
    if (tunnelUrls.length === 0) {
      throw await deny('no live data-plane node', new AppError('DEPENDENCY_UNAVAILABLE', { message: `No data-plane node is serving ${connection.protocol} right now; try again shortly.` }));
    }
    const now = this.clock();
    const nowSec = Math.floor(now.getTime() / 1000);
    const sessionEndsAt = prior ? prior.session_ends_at : new Date((nowSec + connection.maxGrantSeconds) * 1000);
    const ttl = Math.max(30, Math.min(requestedTtl > 0 ? requestedTtl : this.d.settings.defaultTtlSeconds, MAX_GRANT_TTL_SECONDS, connection.maxGrantSeconds));
    const credential = await this.d.connections.readCredential(connection.id);
    const nodeKey = this.d.nodeKeys.activePublicKey();
    const { kid, privateKey } = this.d.grantKeys.signingKey();
    const sessionId = prior?.session_id ?? newId('ses');
    const grantId = newId('grt');
    const signed = await signGrant(
      {
        sessionId,
        user: { id: p.userId, name: p.username, roles: [...p.roles] },
        connection: { id: connection.id, name: connection.name, protocol: connection.protocol, host: connection.host, port: connection.port, tlsMode: connection.tlsMode, database: connection.database },
        policy,
        limits: { maxConnections: this.d.settings.maxConnectionsPerSession, sessionEndsAt: Math.floor(sessionEndsAt.getTime() / 1000), idleTimeoutSeconds: this.d.settings.idleTimeoutSeconds },
        credentials: credential ? await encryptCredentials(credential, nodeKey.publicKey, nodeKey.kid) : null,
      },
      { privateKey, kid, issuer: this.d.settings.issuer, ttlSeconds: ttl, grantId, clock: this.clock },
    );
    await this.d.db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO grants (id, user_id, username, connection_id, connection_name, session_id, login_session_id, policy_hash, policy_version,
           issued_at, expires_at, session_ends_at, renewed_from)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
        [grantId, p.userId, p.username, connection.id, connection.name, sessionId, p.sessionId, policy.hash, Math.max(0, ...policy.policies.map((x) => x.version)), now, signed.expiresAt, sessionEndsAt, prior?.id ?? null],
      );
      await this.d.audit.record({ action, outcome: 'success', actor: actorOf(p), targetType: 'grant', targetId: grantId, connectionId: connection.id, grantId, sessionId, request: meta, details: { connection: connection.name, ttlSeconds: ttl, expiresAt: signed.expiresAt.toISOString(), sessionEndsAt: sessionEndsAt.toISOString(), policyHash: policy.hash, policies: policy.policies, renewedFrom: prior?.id ?? null } }, tx);
    });
    if (prior && prior.policy_hash !== policy.hash) {
      // Tunnels opened under the old grant follow the old policy: close them.
      await this.d.revocations.revoke({ kind: 'grant', id: prior.id, reason: 'policy changed', ttlSeconds: revocationTtl(sessionEndsAt, now) });
    }
    const lifetimeMs = signed.expiresAt.getTime() - now.getTime();
    return {
      token: signed.token,
      grantId,
      expiresAt: signed.expiresAt,
      renewAt: new Date(now.getTime() + Math.floor((lifetimeMs * 2) / 3)),
      protocol: connection.protocol,
      tunnelUrls,
      connectionId: connection.id,
      connectionName: connection.name,
      sessionId,
      sessionEndsAt,
    };
  }

  async list(filter: { user?: string; connection?: string; active?: boolean }, limit: number, cursor?: string): Promise<Page<GrantRecord>> {
    const args: unknown[] = [cursor ? decodeCursor(cursor, ['id']).id : '', limit + 1];
    const where = ['id > $1'];
    if (filter.user) {
      args.push(filter.user);
      where.push(`(user_id = $${args.length} OR lower(username) = lower($${args.length}))`);
    }
    if (filter.connection) {
      args.push(filter.connection);
      where.push(`(connection_id = $${args.length} OR lower(connection_name) = lower($${args.length}))`);
    }
    if (filter.active !== undefined) {
      args.push(this.clock());
      where.push(filter.active ? `(revoked_at IS NULL AND expires_at > $${args.length})` : `(revoked_at IS NOT NULL OR expires_at <= $${args.length})`);
    }
    const { rows } = await this.d.db.query<Row>(`SELECT * FROM grants WHERE ${where.join(' AND ')} ORDER BY id LIMIT $2`, args);
    return pageById(rows.map((r) => this.toRecord(r)), limit);
  }

  async get(id: string): Promise<GrantRecord> {
    const { rows } = await this.d.db.query<Row>('SELECT * FROM grants WHERE id = $1', [id]);
    if (!rows[0]) throw new AppError('GRANT_NOT_FOUND');
    return this.toRecord(rows[0]);
  }

  /** Admin revocation: the grant's whole session ends on every node, and it cannot be renewed. */
  async revoke(id: string, actor: Principal, reason: string, meta: RequestMeta): Promise<GrantRecord> {
    const grant = await this.get(id);
    await this.revokeSession(grant.sessionId, reason, actor.userId);
    await this.d.audit.record({ action: 'grant.revoke', outcome: 'success', actor: actorOf(actor), targetType: 'grant', targetId: id, connectionId: grant.connectionId, grantId: id, sessionId: grant.sessionId, request: meta, details: { reason } });
    return this.get(id);
  }

  /** Ends one grant session everywhere: marks its grants revoked and publishes the revocation. */
  async revokeSession(sessionId: string, reason: string, by: string | null, tx: Queryable = this.d.db): Promise<void> {
    const { rows } = await tx.query<{ session_ends_at: Date }>(
      `UPDATE grants SET revoked_at = coalesce(revoked_at, $2), revoked_by = coalesce(revoked_by, $3), revoke_reason = coalesce(revoke_reason, $4)
       WHERE session_id = $1 RETURNING session_ends_at`,
      [sessionId, this.clock(), by, reason],
    );
    const end = rows.reduce((m, r) => Math.max(m, r.session_ends_at.getTime()), this.clock().getTime());
    await this.d.revocations.revoke({ kind: 'session', id: sessionId, reason, ttlSeconds: revocationTtl(new Date(end), this.clock()) });
  }

  /** Ends every live grant session of a user (disable, delete, password reset, role change). */
  async revokeUserSessions(userId: string, reason: string, tx: Queryable = this.d.db): Promise<number> {
    return this.revokeWhere('user_id', userId, reason, tx);
  }

  /** Ends the grant sessions opened under an API login session (logout, refresh-token reuse). */
  async revokeLoginSession(loginSessionId: string, reason: string): Promise<number> {
    return this.revokeWhere('login_session_id', loginSessionId, reason);
  }

  /** Ends every live grant session to a connection (before it is deleted: its grants would keep working otherwise). */
  async revokeConnectionSessions(connectionId: string, reason: string): Promise<number> {
    return this.revokeWhere('connection_id', connectionId, reason);
  }

  private async revokeWhere(column: 'user_id' | 'login_session_id' | 'connection_id', value: string, reason: string, tx: Queryable = this.d.db): Promise<number> {
    const { rows } = await tx.query<{ session_id: string }>(
      `SELECT DISTINCT session_id FROM grants WHERE ${column} = $1 AND session_ends_at > $2 AND revoked_at IS NULL`,
      [value, this.clock()],
    );
    for (const r of rows) await this.revokeSession(r.session_id, reason, null, tx);
    return rows.length;
  }
}

const notReachable = (name: string) =>
  new AppError('CONNECTION_NOT_FOUND', { message: `No connection named ${JSON.stringify(name)} that you may reach; \`pa list\` shows those you can.` });

const revocationTtl = (end: Date, now: Date): number => Math.max(60, Math.ceil((end.getTime() - now.getTime()) / 1000) + REVOCATION_MARGIN_SECONDS);

/** The grant id (`jti`) inside a grant token, read without verifying (the database record is what counts). */
const grantIdFromToken = (token: string): string => {
  const part = token.split('.')[1];
  try {
    const jti = (JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as { jti?: unknown }).jti;
    if (typeof jti === 'string' && /^grt_[0-9a-z]{26}$/.test(jti)) return jti;
  } catch {
    // fall through
  }
  throw new AppError('GRANT_NOT_FOUND', { message: 'That is not a grant issued here.' });
};
