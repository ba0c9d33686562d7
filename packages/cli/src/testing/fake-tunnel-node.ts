/**
 * A data-plane node's tunnel listener for the CLI's tests: a real HTTP server
 * on 127.0.0.1:0 that answers the Upgrade with @pa/tunnel's server side. After
 * the 101 it echoes every byte back (prefixed by nothing), so a test can send
 * through `pa connect` and read its own bytes. It records the grant of every
 * tunnel, and can refuse (any AppError code) or be told which grants it
 * accepts. Its grant status check (GET /v1/grant-status) answers by the same
 * rules, and counts the checks it was asked.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { AppError, type ErrorCode } from '@pa/kit';
import { acceptTunnel, bearerGrant, GRANT_STATUS_PATH, parseTunnelRequest, rejectTunnel, tunnelProblem } from '@pa/tunnel';

export class FakeTunnelNode {
  /** The grant presented by each tunnel, in order (refused ones included). */
  readonly grants: string[] = [];
  /** Refuse every tunnel with this code (null: accept). */
  refuse: { code: ErrorCode; message: string } | null = null;
  /** When set, only these grants are accepted; others are refused as revoked. */
  acceptOnly: Set<string> | null = null;
  /** Grant status checks asked, in order (the grant each presented). */
  readonly statusChecks: string[] = [];
  private readonly sockets = new Set<Socket>();
  private counter = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  /** Starts on 127.0.0.1:0; with `tls` (PEM certificate and key) it serves HTTPS. */
  static async start(options: { tls?: { cert: string; key: string } } = {}): Promise<FakeTunnelNode> {
    let node: FakeTunnelNode | null = null;
    const plain = (req: IncomingMessage, res: ServerResponse): void => node?.plain(req, res);
    const server: Server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, plain) : createServer(plain);
    server.on('upgrade', (req, socket: Socket) => node?.upgrade(req, socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    node = new FakeTunnelNode(server, `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`);
    return node;
  }

  /** Open tunnels right now. */
  get openTunnels(): number {
    return this.sockets.size;
  }

  /** Why a grant would be refused now, or null. */
  private refusal(grant: string): AppError | null {
    if (this.refuse) return new AppError(this.refuse.code, { message: this.refuse.message });
    if (this.acceptOnly && !this.acceptOnly.has(grant)) return new AppError('GRANT_REVOKED');
    return null;
  }

  private plain(req: IncomingMessage, res: ServerResponse): void {
    if (req.url !== GRANT_STATUS_PATH) {
      res.writeHead(426).end();
      return;
    }
    try {
      const grant = bearerGrant(req);
      this.statusChecks.push(grant);
      const refused = this.refusal(grant);
      if (refused) throw refused;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"active"}');
    } catch (err) {
      const p = tunnelProblem(err);
      res.writeHead(p.status, { 'Content-Type': 'application/problem+json' }).end(p.body);
    }
  }

  private upgrade(req: Parameters<typeof parseTunnelRequest>[0], socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    try {
      const t = parseTunnelRequest(req);
      this.grants.push(t.grant);
      const refused = this.refusal(t.grant);
      if (refused) throw refused;
      this.counter += 1;
      acceptTunnel(socket, `tun_${this.counter}`);
      socket.pipe(socket);
    } catch (err) {
      rejectTunnel(socket, err);
    }
  }

  /** Drops every open tunnel (as a node restart would). */
  dropTunnels(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.dropTunnels();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}
