import { AppError, newId } from '@pa/kit';
import { selectorMatches, type Protocol, type Tags } from '@pa/policy';
import type { SecretBox } from '../../crypto/secret-box';
import type { Database, Queryable } from '../../db/pool';
import { actorOf, type AuditLog } from '../audit/audit-log';
import { decodeCursor, pageById, type Page } from '../pagination';
import type { Principal, RequestMeta } from '../permissions';
import type { PolicyService } from '../policies/policies';

export const TLS_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

/** Backend credential as written (write-only: never returned). */
export type CredentialInput =
  | { kind: 'password'; username: string; password: string }
  | { kind: 'header'; headerName: string; value: string };

/** Backend credential in clear, for grant issuance only. */
export type Credential = CredentialInput;

/** What the API shows of a credential: that it is set, and its non-secret parts. */
export type CredentialSummary = { kind: 'password'; username: string } | { kind: 'header'; headerName: string };

export interface Connection {
  id: string;
  name: string;
  protocol: Protocol;
  host: string;
  port: number;
  tlsMode: TlsMode;
  database: string | null;
  description: string;
  tags: Tags;
  metadata: Record<string, unknown>;
  maxGrantSeconds: number;
  credential: CredentialSummary | null;
  createdAt: string;
  updatedAt: string;
}

/** What a user sees of a connection they may reach. */
export interface ReachableConnection {
  id: string;
  name: string;
  protocol: Protocol;
  description: string;
  tags: Tags;
  database: string | null;
  maxGrantSeconds: number;
}

export interface ConnectionInput {
  name: string;
  protocol: Protocol;
  host: string;
  port: number;
  tlsMode?: TlsMode;
  database?: string | null;
  description?: string;
  tags?: Tags;
  metadata?: Record<string, unknown>;
  maxGrantSeconds?: number;
  /** `null` removes the credential; absent leaves it as it is. */
  credential?: CredentialInput | null;
}

interface Row {
  id: string;
  name: string;
  protocol: Protocol;
  host: string;
  port: number;
  tls_mode: TlsMode;
  database: string | null;
  description: string;
  tags: Tags;
  metadata: Record<string, unknown>;
  max_grant_seconds: number;
  created_at: Date;
  updated_at: Date;
  cred_kind: 'password' | 'header' | null;
  cred_username: string | null;
  cred_header: string | null;
}

const SELECT = `SELECT c.*, k.kind AS cred_kind, k.username AS cred_username, k.header_name AS cred_header
  FROM connections c LEFT JOIN connection_credentials k ON k.connection_id = c.id`;

const toConnection = (r: Row): Connection => ({
  id: r.id,
  name: r.name,
  protocol: r.protocol,
  host: r.host,
  port: r.port,
  tlsMode: r.tls_mode,
  database: r.database,
  description: r.description,
  tags: r.tags,
  metadata: r.metadata,
  maxGrantSeconds: r.max_grant_seconds,
  credential:
    r.cred_kind === 'password'
      ? { kind: 'password', username: r.cred_username ?? '' }
      : r.cred_kind === 'header'
        ? { kind: 'header', headerName: r.cred_header ?? '' }
        : null,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

export const DEFAULT_MAX_GRANT_SECONDS = 3600;

/**
 * Connections (targets) and their backend credentials. Credentials are
 * encrypted at rest, bound to their connection, write-only through the API,
 * and never logged or audited: audit records show only that one changed.
 */
export class ConnectionService {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
    private readonly policies: PolicyService,
    private readonly audit: AuditLog,
  ) {}

  async list(limit: number, cursor?: string, filter: { protocol?: Protocol; tag?: [string, string] } = {}): Promise<Page<Connection>> {
    const after = cursor ? decodeCursor(cursor, ['id']).id : '';
    const args: unknown[] = [after, limit + 1];
    const where = ['c.id > $1'];
    if (filter.protocol) {
      args.push(filter.protocol);
      where.push(`c.protocol = $${args.length}`);
    }
    if (filter.tag) {
      args.push(JSON.stringify({ [filter.tag[0]]: filter.tag[1] }));
      where.push(`c.tags @> $${args.length}::jsonb`);
    }
    const { rows } = await this.db.query<Row>(`${SELECT} WHERE ${where.join(' AND ')} ORDER BY c.id LIMIT $2`, args);
    return pageById(rows.map(toConnection), limit);
  }

  async get(idOrName: string, tx: Queryable = this.db): Promise<Connection> {
    const { rows } = await tx.query<Row>(`${SELECT} WHERE c.id = $1 OR lower(c.name) = lower($1)`, [idOrName]);
    const row = rows[0];
    if (!row) throw new AppError('CONNECTION_NOT_FOUND');
    return toConnection(row);
  }

  /** Connections the caller may reach: covered by an enabled policy bound to one of their roles that allows something. */
  async listReachable(principal: Principal): Promise<ReachableConnection[]> {
    const policies = (await this.policies.forRoles(principal.roles)).filter((p) => p.rules.some((r) => r.effect === 'allow'));
    if (policies.length === 0) return [];
    const { rows } = await this.db.query<Row>(`${SELECT} ORDER BY lower(c.name)`);
    return rows
      .filter((r) => policies.some((p) => selectorMatches(p.selector, { name: r.name, tags: r.tags })))
      .map((r) => ({ id: r.id, name: r.name, protocol: r.protocol, description: r.description, tags: r.tags, database: r.database, maxGrantSeconds: r.max_grant_seconds }));
  }

  async create(input: ConnectionInput, actor: Principal, meta: RequestMeta): Promise<Connection> {
    return this.db.transaction(async (tx) => {
      const id = newId('con');
      await tx.query(
        `INSERT INTO connections (id, name, protocol, host, port, tls_mode, database, description, tags, metadata, max_grant_seconds)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [id, input.name, input.protocol, input.host, input.port, input.tlsMode ?? 'disable', input.database ?? null, input.description ?? '', JSON.stringify(input.tags ?? {}), JSON.stringify(input.metadata ?? {}), input.maxGrantSeconds ?? DEFAULT_MAX_GRANT_SECONDS],
      );
      if (input.credential) await this.writeCredential(tx, id, input.credential);
      const after = await this.get(id, tx);
      await this.audit.record({ action: 'connection.create', outcome: 'success', actor: actorOf(actor), targetType: 'connection', targetId: id, connectionId: id, request: meta, details: { after, credentialChanged: Boolean(input.credential) } }, tx);
      return after;
    });
  }

  async update(idOrName: string, patch: Partial<ConnectionInput>, actor: Principal, meta: RequestMeta): Promise<Connection> {
    return this.db.transaction(async (tx) => {
      const before = await this.get(idOrName, tx);
      const next = { ...before, ...stripUndefined(patch) };
      await tx.query(
        `UPDATE connections SET name = $2, protocol = $3, host = $4, port = $5, tls_mode = $6, database = $7, description = $8,
           tags = $9, metadata = $10, max_grant_seconds = $11, updated_at = now() WHERE id = $1`,
        [before.id, next.name, next.protocol, next.host, next.port, next.tlsMode, next.database, next.description, JSON.stringify(next.tags), JSON.stringify(next.metadata), next.maxGrantSeconds],
      );
      if (patch.credential === null) await tx.query('DELETE FROM connection_credentials WHERE connection_id = $1', [before.id]);
      else if (patch.credential) await this.writeCredential(tx, before.id, patch.credential);
      const after = await this.get(before.id, tx);
      await this.audit.record({ action: 'connection.update', outcome: 'success', actor: actorOf(actor), targetType: 'connection', targetId: before.id, connectionId: before.id, request: meta, details: { before, after, credentialChanged: patch.credential !== undefined } }, tx);
      return after;
    });
  }

  async delete(idOrName: string, actor: Principal, meta: RequestMeta): Promise<void> {
    await this.db.transaction(async (tx) => {
      const before = await this.get(idOrName, tx);
      await tx.query('DELETE FROM connections WHERE id = $1', [before.id]);
      await this.audit.record({ action: 'connection.delete', outcome: 'success', actor: actorOf(actor), targetType: 'connection', targetId: before.id, connectionId: before.id, request: meta, details: { before } }, tx);
    });
  }

  /** The backend credential in clear: only grant issuance calls this. */
  async readCredential(connectionId: string): Promise<Credential | null> {
    const { rows } = await this.db.query<{ kind: 'password' | 'header'; username: string | null; header_name: string | null; secret_ciphertext: Buffer; key_id: string }>(
      'SELECT * FROM connection_credentials WHERE connection_id = $1',
      [connectionId],
    );
    const row = rows[0];
    if (!row) return null;
    const secret = this.box.decrypt(row.secret_ciphertext, row.key_id, `connection-credential:${connectionId}`).toString('utf8');
    return row.kind === 'password'
      ? { kind: 'password', username: row.username ?? '', password: secret }
      : { kind: 'header', headerName: row.header_name ?? '', value: secret };
  }

  private async writeCredential(tx: Queryable, connectionId: string, cred: CredentialInput): Promise<void> {
    const secret = cred.kind === 'password' ? cred.password : cred.value;
    const sealed = this.box.encrypt(secret, `connection-credential:${connectionId}`);
    await tx.query(
      `INSERT INTO connection_credentials (connection_id, kind, username, header_name, secret_ciphertext, key_id)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (connection_id) DO UPDATE SET kind = $2, username = $3, header_name = $4, secret_ciphertext = $5, key_id = $6, updated_at = now()`,
      [connectionId, cred.kind, cred.kind === 'password' ? cred.username : null, cred.kind === 'header' ? cred.headerName : null, sealed.ciphertext, sealed.keyId],
    );
  }
}

const stripUndefined = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== undefined && k !== 'credential')) as Partial<T>;
