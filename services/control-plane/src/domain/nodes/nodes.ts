import type { Database } from '../../db/pool';
import type { AuditLog } from '../audit/audit-log';

export interface NodeRecord {
  id: string;
  version: string;
  tunnelUrl: string;
  protocols: string[];
  load: Record<string, unknown>;
  registeredAt: string;
  lastSeenAt: string;
  draining: boolean;
  live: boolean;
}

interface Row {
  id: string;
  version: string;
  tunnel_url: string;
  protocols: string[];
  load: Record<string, unknown>;
  registered_at: Date;
  last_seen_at: Date;
  draining: boolean;
}

/**
 * Data-plane nodes as the control plane knows them: registered, heartbeating,
 * draining. Kept in PostgreSQL so every control-plane replica hands out the
 * same tunnel URLs. A node is live while its heartbeats keep coming.
 */
export class NodeRegistry {
  constructor(
    private readonly db: Database,
    private readonly audit: AuditLog,
    /** Heartbeat interval asked of nodes; three missed make a node not live. */
    readonly heartbeatSeconds: number,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  private isLive(r: Row): boolean {
    return !r.draining && this.clock().getTime() - r.last_seen_at.getTime() < this.heartbeatSeconds * 3000;
  }

  async register(node: { id: string; version: string; tunnelUrl: string; protocols: string[] }): Promise<void> {
    await this.db.query(
      `INSERT INTO nodes (id, version, tunnel_url, protocols, registered_at, last_seen_at, draining)
       VALUES ($1, $2, $3, $4, $5, $5, false)
       ON CONFLICT (id) DO UPDATE SET version = $2, tunnel_url = $3, protocols = $4, last_seen_at = $5, draining = false`,
      [node.id, node.version, node.tunnelUrl, node.protocols, this.clock()],
    );
    await this.audit.recordSafely({ action: 'node.register', outcome: 'success', nodeId: node.id, targetType: 'node', targetId: node.id, details: { tunnelUrl: node.tunnelUrl, protocols: node.protocols, version: node.version } });
  }

  async heartbeat(node: { id: string; version: string; tunnelUrl: string; protocols: string[] }, load: Record<string, unknown>, draining: boolean): Promise<void> {
    const { rowCount } = await this.db.query(
      `UPDATE nodes SET last_seen_at = $2, load = $3, draining = $4, tunnel_url = $5, protocols = $6, version = $7 WHERE id = $1`,
      [node.id, this.clock(), JSON.stringify(load), draining, node.tunnelUrl, node.protocols, node.version],
    );
    if (!rowCount) await this.register(node);
  }

  async deregister(id: string): Promise<void> {
    await this.db.query('UPDATE nodes SET draining = true, last_seen_at = $2 WHERE id = $1', [id, this.clock()]);
    await this.audit.recordSafely({ action: 'node.deregister', outcome: 'success', nodeId: id, targetType: 'node', targetId: id });
  }

  async list(): Promise<NodeRecord[]> {
    const { rows } = await this.db.query<Row>('SELECT * FROM nodes ORDER BY id');
    return rows.map((r) => ({
      id: r.id,
      version: r.version,
      tunnelUrl: r.tunnel_url,
      protocols: r.protocols,
      load: r.load,
      registeredAt: r.registered_at.toISOString(),
      lastSeenAt: r.last_seen_at.toISOString(),
      draining: r.draining,
      live: this.isLive(r),
    }));
  }

  /** Tunnel URLs of live nodes serving `protocol`, least loaded first. */
  async tunnelUrls(protocol: string): Promise<string[]> {
    const live = (await this.list()).filter((n) => n.live && n.protocols.includes(protocol));
    const sessions = (n: NodeRecord) => {
      const s = (n.load.sessions as Array<{ liveSessions?: number }> | undefined) ?? [];
      return s.reduce((sum, x) => sum + (x.liveSessions ?? 0), 0);
    };
    return live.sort((a, b) => sessions(a) - sessions(b)).map((n) => n.tunnelUrl);
  }
}
