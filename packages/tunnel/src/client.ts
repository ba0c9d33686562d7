import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { CLIENT_LABEL_HEADER, GRANT_STATUS_PATH, TUNNEL_ID_HEADER, TUNNEL_PATH, TUNNEL_PROTOCOL } from './protocol';

/** A tunnel the node refused, with its problem document's code and detail. */
export class TunnelRefusedError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly retryAfterSeconds: number | null,
  ) {
    super(`tunnel refused (${status} ${code}): ${detail}`);
    this.name = 'TunnelRefusedError';
  }
}

export interface OpenTunnelOptions {
  /** Base URL of the data-plane node, e.g. `http://127.0.0.1:7000` or `https://…`. */
  url: string;
  grant: string;
  clientLabel?: string;
  timeoutMs?: number;
  /** TLS: the CAs to trust for `https` nodes (replaces Node's default list); Node's default when absent. */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
}

export interface OpenTunnel {
  socket: Socket;
  tunnelId: string;
}

/** A GET to a node (http or https, trusting `ca` when given), on a connection of its own. */
const nodeRequest = (options: Pick<OpenTunnelOptions, 'url' | 'ca'>, path: string, headers: Record<string, string>): http.ClientRequest => {
  const base = new URL(options.url);
  const mod = base.protocol === 'https:' ? https : http;
  return mod.request({
    protocol: base.protocol,
    hostname: base.hostname,
    port: base.port || (base.protocol === 'https:' ? 443 : 80),
    path,
    method: 'GET',
    headers,
    ...(options.ca ? { ca: options.ca as string | Buffer | Array<string | Buffer> } : {}),
    agent: false,
  });
};

/**
 * Ends `req` and settles on the node's answer within `timeoutMs`: a 101 goes
 * to `accept.upgrade`; a response `accept.response` takes (returns a value
 * for) resolves with it; any other response is read as the node's refusal
 * ({@link TunnelRefusedError}); a network error or the deadline rejects.
 */
const nodeAnswer = <T>(
  req: http.ClientRequest,
  what: string,
  timeoutMs: number,
  accept: { upgrade?: (res: IncomingMessage, socket: Socket, head: Buffer) => T; response?: (res: IncomingMessage) => { value: T } | null },
): Promise<T> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => req.destroy(new Error(`${what} timed out after ${timeoutMs} ms`)), timeoutMs);
    const { upgrade, response } = accept;
    if (upgrade) {
      req.once('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
        clearTimeout(timer);
        resolve(upgrade(res, socket, head));
      });
    }
    req.once('response', (res) => {
      const taken = response?.(res) ?? null;
      if (taken !== null) {
        clearTimeout(timer);
        resolve(taken.value);
        return;
      }
      void readRefusal(res).then((err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });

/**
 * Opens a tunnel: sends the Upgrade request with the grant and resolves with
 * the raw socket once the node answers 101. Bytes the node sent right after
 * the 101 are pushed back into the socket, so nothing is lost.
 */
export const openTunnel = (options: OpenTunnelOptions): Promise<OpenTunnel> => {
  const req = nodeRequest(options, TUNNEL_PATH, {
    Connection: 'Upgrade',
    Upgrade: TUNNEL_PROTOCOL,
    Authorization: `Bearer ${options.grant}`,
    ...(options.clientLabel ? { [CLIENT_LABEL_HEADER]: options.clientLabel } : {}),
  });
  return nodeAnswer(req, 'tunnel handshake', options.timeoutMs ?? 10_000, {
    upgrade: (res, socket, head) => {
      if (head.length > 0) socket.unshift(head);
      socket.setNoDelay(true);
      return { socket, tunnelId: String(res.headers[TUNNEL_ID_HEADER] ?? '') };
    },
  });
};

/** The refusal a node answered with: its problem document's code and detail, or the status line. */
const readRefusal = (res: IncomingMessage): Promise<TunnelRefusedError> =>
  new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      if (size < 64 * 1024) chunks.push(c);
      size += c.length;
    });
    const done = (): void => {
      let code = 'UNKNOWN';
      let detail = res.statusMessage ?? 'refused';
      let retry: number | null = null;
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: unknown; detail?: unknown; retryAfterSeconds?: unknown };
        if (typeof body.code === 'string') code = body.code;
        if (typeof body.detail === 'string') detail = body.detail;
        if (typeof body.retryAfterSeconds === 'number') retry = body.retryAfterSeconds;
      } catch {
        // Not a problem document: keep the status line.
      }
      resolve(new TunnelRefusedError(res.statusCode ?? 0, code, detail, retry));
    };
    res.on('end', done);
    res.on('error', done);
  });

export type CheckGrantOptions = Omit<OpenTunnelOptions, 'clientLabel'>;

/**
 * Asks a node whether it would still take the grant (GET /v1/grant-status),
 * opening nothing: resolves when it would, rejects with the
 * {@link TunnelRefusedError} a tunnel would get (GRANT_REVOKED…), or with the
 * network error when the node cannot be reached.
 */
export const checkGrant = (options: CheckGrantOptions): Promise<void> => {
  const req = nodeRequest(options, GRANT_STATUS_PATH, { Authorization: `Bearer ${options.grant}`, Connection: 'close' });
  return nodeAnswer<void>(req, 'grant check', options.timeoutMs ?? 10_000, {
    response: (res) => {
      if (res.statusCode !== 200) return null;
      res.resume();
      return { value: undefined };
    },
  });
};
