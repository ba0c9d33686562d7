import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { KeyPair, Logger } from '@pa/kit';
import type { KeyStore } from '@pa/grants';
import type { PolicyEngine } from '@pa/policy';
import type { State } from '@pa/state';
import { acceptTunnel, bearerGrant, GRANT_STATUS_PATH, parseTunnelRequest, rejectTunnel, tunnelProblem } from '@pa/tunnel';
import type { AuditSink } from '../audit';
import type { Config } from '../config';
import type { Metrics } from '../metrics';
import type { ProtocolHandler, ProtocolName } from '../protocols/handler';
import { createAdmission } from './admission';
import type { LiveSessions } from './live-sessions';

export interface TunnelListenerDeps {
  config: Config;
  nodeId: () => string;
  logger: Logger;
  /** The current key set (replaced on rotation). Null until the first set arrives. */
  keys: () => KeyStore | null;
  state: State;
  audit: AuditSink;
  engine: PolicyEngine;
  handlers: Readonly<Partial<Record<ProtocolName, ProtocolHandler>>>;
  live: LiveSessions;
  metrics: Metrics;
  clock?: () => Date;
  /** True once the node drains: new tunnels are refused. */
  draining: () => boolean;
  /** Certificate and key: the listener speaks HTTPS (TLS first, then the same Upgrade). Plain HTTP when absent. */
  tls?: KeyPair | null;
}

/**
 * The tunnel listener: HTTP/1.1 Upgrade requests carrying a grant, over TLS
 * when the node has a certificate (HTTPS). Admission is
 * local — signature against the cached key set, claims, then the shared state
 * (revocation from the local mirror, rate limit and concurrency in Redis with
 * a local fallback) — and never calls the control plane. After the 101 the
 * socket goes to the grant's protocol handler.
 */
export const createTunnelListener = (d: TunnelListenerDeps): Server => {
  const httpOptions: ServerOptions = { requestTimeout: d.config.tunnel.handshakeTimeoutMs, headersTimeout: d.config.tunnel.handshakeTimeoutMs, maxHeaderSize: 64 * 1024 };
  const admission = createAdmission(d);
  /** Plain requests: the grant status check (see @pa/tunnel's protocol), else 426. */
  const upgradeRequired: RequestListener = (req, res) => {
    if ((req.url ?? '').split('?')[0] === GRANT_STATUS_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
      const answer = (status: number, body: string): void => {
        res.writeHead(status, { 'Content-Type': status === 200 ? 'application/json' : 'application/problem+json', 'Cache-Control': 'no-store', Connection: 'close' });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      let token: string;
      try {
        token = bearerGrant(req);
      } catch (err) {
        const p = tunnelProblem(err);
        answer(p.status, p.body);
        return;
      }
      admission.status(token).then(
        (g) => answer(200, JSON.stringify({ status: 'active', grantId: g.jti, sessionId: g.sessionId, connection: g.connection.name, expiresAt: new Date(g.exp * 1000).toISOString() })),
        (err: unknown) => {
          const p = tunnelProblem(err);
          answer(p.status, p.body);
        },
      );
      return;
    }
    res.writeHead(426, { 'Content-Type': 'application/problem+json', Upgrade: 'pa-tunnel/1', Connection: 'close' });
    res.end(JSON.stringify({ title: 'Upgrade Required', status: 426, code: 'VALIDATION_FAILED', detail: 'Open a tunnel with an HTTP Upgrade to pa-tunnel/1 at /v1/tunnel.' }));
  };
  // With TLS the handshake shares the tunnel handshake's deadline; a client that fails it is dropped by Node.
  const server: Server = d.tls
    ? createHttpsServer({ ...httpOptions, cert: d.tls.cert, key: d.tls.key, handshakeTimeout: d.config.tunnel.handshakeTimeoutMs }, upgradeRequired)
    : createServer(httpOptions, upgradeRequired);
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => undefined);
    void admit(req, socket, head).catch((err: unknown) => {
      d.logger.error('Tunnel admission failed unexpectedly.', { err });
      rejectTunnel(socket, err);
    });
  });
  server.on('clientError', (_err, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  const admit = async (req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> => {
    let tunnelReq;
    let parseError: unknown = null;
    try {
      tunnelReq = parseTunnelRequest(req);
    } catch (err) {
      parseError = err;
    }
    await admission.admit(
      {
        grant: tunnelReq?.grant ?? '',
        clientAddress: req.socket.remoteAddress ?? '',
        clientLabel: tunnelReq?.clientLabel ?? null,
        socket,
        refuse: (e) => rejectTunnel(socket, e),
        accept: (tunnelId) => {
          acceptTunnel(socket, tunnelId);
          socket.setNoDelay(true);
          if (head.length) socket.unshift(head);
        },
      },
      parseError,
    );
  };
  return server;
};
