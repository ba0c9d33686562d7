import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import { AppError } from '@pa/kit';
import { relaySockets } from '@pa/tunnel';
import type { ProtocolHandler, Session, SessionContext, SessionResult } from '../handler';

/**
 * Raw TCP: dial the upstream (TLS when the connection asks for it), then relay
 * bytes both ways with backpressure (pipe), half-close (an end on one side is
 * passed on while the other direction keeps flowing), an idle timeout, and the
 * grant's absolute end via `ctx.signal`. Bytes are never copied or inspected.
 *
 *   client ══ tunnel ══▶ node ══ TCP/TLS ══▶ upstream
 *          ◀════════════      ◀═════════════
 */
export const dialUpstream = (ctx: SessionContext): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const { host, port, tlsMode } = ctx.grant.connection;
    const useTls = tlsMode !== 'disable';
    const sock: Socket = useTls
      ? tlsConnect({ host, port, servername: host, rejectUnauthorized: tlsMode === 'verify-full' || tlsMode === 'verify-ca', checkServerIdentity: tlsMode === 'verify-ca' ? () => undefined : undefined })
      : connect({ host, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new AppError('DEPENDENCY_UNAVAILABLE', { message: `The backend ${ctx.grant.connection.name} did not answer in time.` }));
    }, ctx.settings.connectTimeoutMs);
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(new AppError('DEPENDENCY_UNAVAILABLE', { message: `The backend ${ctx.grant.connection.name} is unreachable.`, cause: err }));
    };
    sock.once('error', onError);
    sock.once(useTls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      sock.off('error', onError);
      sock.setNoDelay(true);
      resolve(sock);
    });
  });

/** Relays two streams until both directions are done, or `signal` aborts, or both are idle too long. */
export const relay = (clientStream: Duplex, upstreamStream: Socket, ctx: SessionContext): Promise<SessionResult> =>
  new Promise((resolve) => {
    let up = 0;
    let down = 0;
    let reason: string | null = null;
    let lastActivity = Date.now();
    let clientEnded = false;
    let upstreamEnded = false;
    // Bytes move in @pa/tunnel's relay (reusable read buffers, backpressure, half-close passed on);
    // its `a`/`b` are the sockets that carry each side from here on.
    const pipe = relaySockets(clientStream, upstreamStream, {
      onBytes: (from, n) => {
        if (from === 'a') up += n;
        else down += n;
        lastActivity = Date.now();
      },
    });
    const client = pipe.a;
    const upstream = pipe.b;
    const finish = (why: string) => {
      reason ??= why;
      clearInterval(idleTimer);
      ctx.signal.removeEventListener('abort', onAbort);
      client.destroy();
      upstream.destroy();
    };
    const onAbort = () => finish(abortReason(ctx.signal));
    client.on('end', () => {
      clientEnded = true;
      if (upstreamEnded) finish('client_closed');
    });
    upstream.on('end', () => {
      upstreamEnded = true;
      if (clientEnded) finish('upstream_closed');
    });
    client.on('error', () => finish('client_error'));
    upstream.on('error', () => finish('upstream_error'));
    client.on('close', () => finish(upstreamEnded ? 'upstream_closed' : 'client_closed'));
    upstream.on('close', () => {
      // Let the client drain what the upstream sent, then close.
      if (!clientEnded && upstreamEnded) return;
      finish('upstream_closed');
    });
    const idleMs = Math.min(ctx.settings.idleTimeoutMs, ctx.grant.limits.idleTimeoutSeconds * 1000);
    const idleTimer = setInterval(() => {
      if (Date.now() - lastActivity >= idleMs) finish('idle_timeout');
      else pipe.idle();
    }, Math.max(250, Math.min(idleMs / 4, 5000)));
    idleTimer.unref();
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });
    let settled = false;
    const settle = () => {
      if (settled || !client.destroyed || !upstream.destroyed) return;
      settled = true;
      resolve({ bytesFromClient: up, bytesToClient: down, reason: reason ?? 'client_closed' });
    };
    client.on('close', settle);
    upstream.on('close', settle);
  });

/** The `signal.reason` of an aborted session as a short reason string. */
export const abortReason = (signal: AbortSignal): string => {
  const r: unknown = signal.reason;
  if (r instanceof AppError) {
    if (r.code === 'GRANT_REVOKED') return 'revoked';
    if (r.code === 'GRANT_EXPIRED') return 'grant_expired';
    if (r.code === 'NOT_READY') return 'draining';
    return r.code.toLowerCase();
  }
  return 'aborted';
};

export const tcpHandler: ProtocolHandler = {
  name: 'tcp',
  setup: async (client: Duplex, ctx: SessionContext): Promise<Session> => {
    const upstream = await dialUpstream(ctx);
    return { run: () => relay(client, upstream, ctx) };
  },
  sendError: (client: Duplex) => {
    // Raw TCP has no error format of its own: close.
    client.destroy();
  },
};
