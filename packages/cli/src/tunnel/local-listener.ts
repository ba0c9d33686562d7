/**
 * The local end of `pa connect`: a TCP listener on the loopback interface whose
 * every accepted connection gets its own tunnel to a data-plane node.
 *
 *   psql ──TCP──▶ 127.0.0.1:N ──(this module)──▶ HTTP Upgrade + grant ──▶ node ──▶ backend
 *
 * - A local connection is held paused while its tunnel is opened, so the
 *   client's first bytes (a PostgreSQL StartupMessage) are never lost.
 * - The grant is read when the connection arrives, so a renewed grant is used
 *   by the next connection; the grant's tunnel URLs are tried in order, moving
 *   on when a node is down or says it cannot serve (5xx), and stopping at a
 *   refusal that any node would repeat (revoked, expired, denied).
 * - Bytes are relayed both ways (@pa/tunnel's relaySockets) with backpressure
 *   and half-close; when either side drops, the other is closed.
 */
import { createServer, isIPv4, type Server, type Socket } from 'node:net';
import { tlsFailureOf } from '@pa/kit';
import { openTunnel as defaultOpenTunnel, relaySockets, TunnelRefusedError, type OpenTunnel, type OpenTunnelOptions } from '@pa/tunnel';
import { tlsFailureMessage } from '../api/trust';
import { CliError, EXIT } from '../errors';

/** The address `pa connect` listens on unless told otherwise. */
export const DEFAULT_ADDRESS = '127.0.0.1';

/**
 * Checks a listen address: loopback only (SECURITY.md: the CLI binds
 * 127.0.0.1), so nobody else on the network can use the user's grant.
 * `localhost` means 127.0.0.1.
 */
export const checkLoopbackAddress = (address: string): string => {
  const a = address.trim().toLowerCase();
  if (a === 'localhost') return DEFAULT_ADDRESS;
  if (isIPv4(a) && a.startsWith('127.')) return a;
  if (a === '::1' || a === '[::1]') return '::1';
  throw new CliError(
    `refusing to listen on ${address}: pa connect listens on the loopback interface only (127.0.0.1), so nobody else can use your grant`,
    EXIT.ERROR,
  );
};

/** What the listener needs to know about the current grant. */
export interface TunnelGrant {
  token: string;
  tunnelUrls: readonly string[];
}

/** Something that happened to one local connection (for the user's terminal). */
export type ListenerEvent =
  | { type: 'opened'; id: number; peer: string; url: string }
  /** `endedBy`: which side closed first — the local client, or the node (the backend ended it, or the node closed the tunnel: revoked, expired, draining). */
  | { type: 'closed'; id: number; bytesSent: number; bytesReceived: number; url: string; endedBy: 'local' | 'node' }
  | { type: 'refused'; id: number; error: TunnelRefusedError }
  | { type: 'failed'; id: number; errors: readonly { url: string; message: string }[] };

export interface LocalListenerOptions {
  address?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** The grant to present; called for every new local connection. */
  grant: () => TunnelGrant;
  onEvent?: (event: ListenerEvent) => void;
  /** Tunnel handshake timeout per node (default 10 s). */
  handshakeTimeoutMs?: number;
  /** CAs to trust for https:// nodes (Node's default list when absent). */
  ca?: readonly string[];
  /** Replaceable for tests. */
  openTunnel?: (options: OpenTunnelOptions) => Promise<OpenTunnel>;
}

/** Refusals another node might not repeat: it is down or restarting, or it has not yet seen the signing key. */
const isNodeSpecific = (err: TunnelRefusedError): boolean =>
  err.status >= 500 || err.code === 'GRANT_KEY_UNKNOWN' || err.code === 'GRANT_NOT_YET_VALID';

/** A loopback listener that opens one tunnel per accepted connection. */
export class LocalListener {
  private readonly sockets = new Set<Socket>();
  private nextId = 1;
  private closing = false;

  private constructor(
    private readonly server: Server,
    private readonly options: LocalListenerOptions,
    readonly address: string,
    readonly port: number,
  ) {}

  /** Binds the listener; a busy port or a non-loopback address is a CliError. */
  static async start(options: LocalListenerOptions): Promise<LocalListener> {
    const address = checkLoopbackAddress(options.address ?? DEFAULT_ADDRESS);
    const requested = options.port ?? 0;
    if (!Number.isInteger(requested) || requested < 0 || requested > 65_535) throw new CliError(`--port must be between 1 and 65535, not ${requested}`);
    let listener: LocalListener | null = null;
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => listener?.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE') reject(new CliError(`port ${requested} is already in use on ${address}: choose another with --port, or leave --port out to get a free one`));
        else if (err.code === 'EACCES') reject(new CliError(`not allowed to listen on port ${requested}: choose a port above 1023`));
        else reject(err);
      });
      server.listen({ host: address, port: requested, exclusive: true }, resolve);
    });
    const bound = server.address();
    const port = typeof bound === 'object' && bound ? bound.port : requested;
    listener = new LocalListener(server, options, address, port);
    return listener;
  }

  /** Local connections currently open (tunnelled or being set up). */
  get connectionCount(): number {
    return this.sockets.size;
  }

  private emit(event: ListenerEvent): void {
    if (!this.closing) this.options.onEvent?.(event);
  }

  private async openFirst(id: number, grant: TunnelGrant): Promise<{ socket: Socket; url: string }> {
    const open = this.options.openTunnel ?? defaultOpenTunnel;
    const errors: { url: string; message: string }[] = [];
    for (const url of grant.tunnelUrls) {
      try {
        const t = await open({ url, grant: grant.token, clientLabel: `pa-cli-${id}`, timeoutMs: this.options.handshakeTimeoutMs ?? 10_000, ...(this.options.ca ? { ca: this.options.ca } : {}) });
        return { socket: t.socket, url };
      } catch (err) {
        if (err instanceof TunnelRefusedError && !isNodeSpecific(err)) throw err;
        const tls = tlsFailureOf(err);
        errors.push({ url, message: tls ? tlsFailureMessage(tls) : err instanceof Error ? err.message : String(err) });
      }
    }
    throw new TunnelsUnavailableError(errors);
  }

  private accept(local: Socket): void {
    const id = this.nextId;
    this.nextId += 1;
    if (this.closing) {
      local.destroy();
      return;
    }
    this.sockets.add(local);
    local.on('error', () => local.destroy());
    local.once('close', () => this.sockets.delete(local));
    const peer = `${local.remoteAddress ?? '?'}:${local.remotePort ?? '?'}`;
    void this.openFirst(id, this.options.grant()).then(
      ({ socket: remote, url }) => {
        if (this.closing || local.destroyed) {
          remote.destroy();
          return;
        }
        this.sockets.add(remote);
        this.emit({ type: 'opened', id, peer, url });
        this.relay(id, url, local, remote);
      },
      (err: unknown) => {
        if (err instanceof TunnelRefusedError) this.emit({ type: 'refused', id, error: err });
        else if (err instanceof TunnelsUnavailableError) this.emit({ type: 'failed', id, errors: err.errors });
        else this.emit({ type: 'failed', id, errors: [{ url: '', message: err instanceof Error ? err.message : String(err) }] });
        local.destroy();
      },
    );
  }

  private relay(id: number, url: string, localSocket: Socket, remoteSocket: Socket): void {
    let open = 2;
    let endedBy: 'local' | 'node' | null = null;
    const bytes = { sent: 0, received: 0 };
    // @pa/tunnel's relay: reusable read buffers, backpressure, half-close passed on.
    // Its `a`/`b` carry each side from here on (a plain socket is adopted by a new one).
    const pipe = relaySockets(localSocket, remoteSocket, {
      onBytes: (from, n) => {
        if (from === 'a') bytes.sent += n;
        else bytes.received += n;
      },
    });
    const local = pipe.a;
    const remote = pipe.b;
    const closedOne = (): void => {
      open -= 1;
      if (open === 0) this.emit({ type: 'closed', id, bytesSent: bytes.sent, bytesReceived: bytes.received, url, endedBy: endedBy ?? 'local' });
    };
    local.once('end', () => (endedBy ??= 'local'));
    remote.once('end', () => (endedBy ??= 'node'));
    local.on('error', () => local.destroy());
    remote.on('error', () => remote.destroy());
    // A clean end is passed on by the relay (half-close works both ways); when
    // the tunnel goes away, the local connection is closed too, and vice versa.
    remote.once('close', (hadError: boolean) => {
      endedBy ??= 'node';
      this.sockets.delete(remoteSocket);
      if (hadError || !remote.readableEnded) local.destroy();
      else local.end(() => local.destroy());
      closedOne();
    });
    local.once('close', (hadError: boolean) => {
      endedBy ??= 'local';
      if (hadError) remote.destroy();
      else remote.end();
      closedOne();
    });
    // Quiet tunnels give back their bulk read buffers.
    const idle = setInterval(() => pipe.idle(), 2000);
    idle.unref();
    local.once('close', () => clearInterval(idle));
  }

  /** Stops accepting and closes every local connection and tunnel. */
  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }
}

/** No node could open a tunnel (down, unreachable, or each refused for a node-specific reason). */
export class TunnelsUnavailableError extends Error {
  constructor(readonly errors: readonly { url: string; message: string }[]) {
    super(errors.length ? `no data-plane node could open a tunnel: ${errors.map((e) => `${e.url}: ${e.message}`).join('; ')}` : 'the grant lists no data-plane node');
    this.name = 'TunnelsUnavailableError';
  }
}
