import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { AppError, toAppError } from '@pa/kit';
import { backend, FrontendDecoder, protocolNegotiation, readPasswordMessage, type CancelRequest, type FrontendMessage } from '@pa/pgwire';
import { readClientStartup, readStartupPhase, type StartupPhaseFinish } from '../protocols/postgres/client-startup';
import { isPostgresHandler, type AcceptedClientStartup } from '../protocols/postgres/postgres-handler';
import type { Admission } from './admission';
import type { TunnelListenerDeps } from './tunnel-listener';

/**
 * Direct PostgreSQL connections, without `pa connect`: a client (psql, a
 * driver, a GUI) dials the node itself with `sslmode=require` and presents its
 * grant as the password. TLS is mandatory (the grant must never cross the
 * network in clear): a StartupMessage sent without an SSLRequest is refused
 * with FATAL 28000. Then, over TLS: the StartupMessage (the same allowlist as
 * in a tunnel), AuthenticationCleartextPassword, the password = the grant, and
 * the same admission as a tunnel (signature, claims, revocation, rate limit,
 * concurrency, audit). Only postgres grants are served here. A CancelRequest
 * (psql's Ctrl-C: a connection of its own, in clear before PostgreSQL 17) is
 * honoured for keys issued to direct sessions, audited against the session it
 * targets, and the connection closed without an answer, as PostgreSQL does.
 */
export const createPostgresDirectListener = (d: TunnelListenerDeps, admission: Admission, tls: { readonly secureContext: SecureContext }): Server => {
  const pg = d.handlers.postgres;
  if (pg === undefined || !isPostgresHandler(pg)) throw new TypeError('Direct PostgreSQL connections need the postgres handler.');
  const timeoutMs = d.config.tunnel.handshakeTimeoutMs;
  /** A FATAL ErrorResponse, then close: the handler's own way of refusing. */
  const fatal = (socket: Socket | TLSSocket, err: AppError): void => pg.sendError(socket, err);

  /** The first packet on the raw socket: it must be an SSLRequest (a GSSENCRequest is declined first). */
  const negotiate = (raw: Socket): Promise<'ssl' | 'plain' | CancelRequest> => {
    const decoder = new FrontendDecoder();
    let outcome: 'ssl' | 'plain' | 'gss' | CancelRequest | null = null;
    const onMessage = (m: FrontendMessage): void => {
      if (m.type === 'SSLRequest') outcome = 'ssl';
      else if (m.type === 'GSSENCRequest') outcome = 'gss';
      else if (m.type === 'CancelRequest') outcome = m;
      else outcome = 'plain';
    };
    return readStartupPhase<'ssl' | 'plain' | CancelRequest>(
      raw,
      { timeoutMs, lateMessage: 'The startup packet did not arrive in time.', closedMessage: 'The client closed the connection during startup.' },
      (chunk, finish) => {
        const err = decoder.write(chunk, onMessage);
        if (err) return finish(err);
        if (outcome === 'gss') {
          outcome = null;
          raw.write(backend.encryptionResponse(false));
          decoder.negotiationAnswered();
          return;
        }
        if (outcome !== null) finish(null, outcome);
      },
    );
  };

  /** Reads the password message (the grant) that answers AuthenticationCleartextPassword. */
  const readPassword = (socket: TLSSocket, startup: AcceptedClientStartup): Promise<string> => {
    const take = (m: FrontendMessage, finish: StartupPhaseFinish<string>): void => {
      if (m.type !== 'AuthenticationResponse') return finish(new AppError('PG_PROTOCOL_VIOLATION', { message: 'Expected a password message.' }));
      const r = readPasswordMessage(m.body);
      if (!r.ok) finish(r.error);
      else finish(null, r.value);
    };
    return readStartupPhase<string>(
      socket,
      { timeoutMs, lateMessage: 'The password did not arrive in time.', closedMessage: 'The client closed the connection during authentication.' },
      (chunk, finish) => {
        let taken = false;
        const err = startup.decoder.write(chunk, (m) => {
          if (taken) return;
          taken = true;
          take(m, finish);
        });
        if (err) finish(err);
      },
      // A password pipelined with the StartupMessage was read with it.
      (finish) => {
        const first = startup.pending[0];
        if (first === undefined) return false;
        take(first, finish);
        return true;
      },
    );
  };

  /** A CancelRequest (in clear, as libpq before PostgreSQL 17 sends it, or over TLS): handled, then closed without an answer. */
  const cancel = async (socket: Socket | TLSSocket, request: CancelRequest, clientAddress: string): Promise<void> => {
    await pg.cancelDirect(request, { audit: d.audit, logger: d.logger, timeoutMs: d.config.limits.connectTimeoutMs, clientAddress });
    socket.destroy();
  };

  const handle = async (raw: Socket): Promise<void> => {
    const clientAddress = raw.remoteAddress ?? '';
    const first = await negotiate(raw);
    if (typeof first === 'object') return cancel(raw, first, clientAddress);
    if (first === 'plain') {
      fatal(raw, new AppError('AUTH_REQUIRED', { message: 'TLS is required: connect with sslmode=require (the password is your grant).' }));
      return;
    }
    raw.write(backend.encryptionResponse(true));
    // The current certificate (it may have been reloaded since the listener started).
    const socket = new TLSSocket(raw, { isServer: true, secureContext: tls.secureContext });
    wrapped.add(raw);
    socket.on('error', () => undefined);
    const handshake = setTimeout(() => socket.destroy(), timeoutMs);
    try {
      await once(socket, 'secure');
    } finally {
      clearTimeout(handshake);
    }
    const abort = new AbortController();
    const startup = await readClientStartup(socket, { timeoutMs, signal: abort.signal }).catch((err: unknown) => {
      fatal(socket, toAppError(err));
      return null;
    });
    if (startup === null) return;
    if (startup.kind === 'cancel') return cancel(socket, startup.request, clientAddress);
    // NegotiateProtocolVersion, if the client asked for a newer minor version, comes before the authentication request.
    const negotiation = protocolNegotiation(startup.message, startup.accepted.protocolOptions);
    if (negotiation.needed) socket.write(backend.negotiateProtocolVersion(negotiation.newestMinor, negotiation.unrecognizedOptions));
    socket.write(backend.authenticationCleartextPassword());
    let grant: string;
    try {
      grant = await readPassword(socket, startup);
    } catch (err) {
      fatal(socket, toAppError(err));
      return;
    }
    await admission.admit({
      grant,
      clientAddress,
      clientLabel: 'postgres direct',
      socket,
      protocol: 'postgres',
      refuse: (e) => fatal(socket, e),
      accept: () => socket.setNoDelay(true),
      setup: (_handler, ctx) => pg.setupAfterStartup(socket, ctx, startup, negotiation.needed),
    });
  };

  /** Raw sockets now carrying TLS: an error on them is not written in clear. */
  const wrapped = new WeakSet<Socket>();

  return createServer((raw) => {
    raw.on('error', () => undefined);
    handle(raw).catch((err: unknown) => {
      const e = toAppError(err);
      if (e.code === 'INTERNAL') d.logger.error('Direct PostgreSQL connection failed.', { err });
      if (wrapped.has(raw)) raw.destroy();
      else fatal(raw, e);
    });
  });
};
