import type { Duplex } from 'node:stream';
import type { AppError, Logger } from '@pa/kit';
import type { BackendCredentials, GrantClaims } from '@pa/grants';
import type { CompiledPolicy, PolicyEngine } from '@pa/policy';
import type { RateLimits } from '@pa/state';
import type { AuditSink, SessionAuditHooks } from '../audit';

/**
 * The protocol handler contract (STYLE.md §2, after Boundary's handler and
 * Teleport's Engine). The tunnel listener has verified the grant, checked
 * revocation, rate limits and concurrency, and completed the 101 handshake;
 * then, for each tunnel:
 *
 *   listener ──setup(client, ctx)──▶ handler   reads the protocol's own startup, dials upstream
 *            ◀──── Session ───────────            (failure: handler.sendError(client, err), close)
 *   listener: audit session.start ("connected" only after setup succeeded)
 *            ──session.run()───────▶             relays until either side closes or ctx.signal aborts
 *            ◀── SessionResult ─────             bytes each way and why it ended → session.end
 */
export type ProtocolName = 'tcp' | 'http' | 'postgres';

/** Everything a handler knows about one tunnel. */
export interface SessionContext {
  /** This tunnel's id (`tun_…`); one grant may have several tunnels. */
  readonly tunnelId: string;
  readonly nodeId: string;
  /** The verified grant. */
  readonly grant: GrantClaims;
  /** The compiled policy from the grant, loaded and checked by the engine. */
  readonly policy: CompiledPolicy;
  /** The engine (decision cache, parser pool) shared by the node. */
  readonly engine: PolicyEngine;
  /** Reads the backend credential from the grant (decrypted on the node, never sent to the client). */
  credentials(): Promise<BackendCredentials | null>;
  /**
   * Audit hooks with the actor, connection, grant, session and protocol filled
   * in. `decision` must be awaited before the action it allows; it rejects when
   * audit cannot be written (refuse the action: HTTP 503, SQLSTATE 58000).
   */
  readonly audit: SessionAudit;
  /** Per-request / per-statement rate limit shared by all nodes (falls back to local). */
  consumeRequest(): ReturnType<RateLimits['consumeRequest']>;
  /**
   * Aborted when the session must end: revocation, the grant's absolute end,
   * node drain. `signal.reason` is an AppError saying why (GRANT_REVOKED,
   * GRANT_EXPIRED, NOT_READY…); the handler ends the session in its protocol's
   * own way (PostgreSQL FATAL, HTTP close, TCP close).
   */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly clock: () => Date;
  /** Per-node settings the handlers share. */
  readonly settings: HandlerSettings;
}

export interface HandlerSettings {
  /** Close a tunnel idle this long (the grant's own idle timeout wins when shorter). */
  readonly idleTimeoutMs: number;
  /** Upstream connect timeout. */
  readonly connectTimeoutMs: number;
  /** Largest request head (HTTP) / message (PostgreSQL) accepted from a client. */
  readonly maxHeaderBytes: number;
}

/** Audit hooks bound to one session. */
export type SessionAudit = SessionAuditHooks;

/** How a session ended. */
export interface SessionResult {
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
  /** Short machine-readable reason: `client_closed`, `upstream_closed`, `idle_timeout`, `revoked`, `grant_expired`, `upstream_error`, `protocol_error`, `draining`. */
  readonly reason: string;
  /** Requests or statements handled, when the protocol has them. */
  readonly requests?: number;
}

/** A session whose setup succeeded. */
export interface Session {
  run(): Promise<SessionResult>;
}

export interface ProtocolHandler {
  readonly name: ProtocolName;
  /** Reads the protocol's startup from the client and dials the upstream. Throws AppError on failure. */
  setup(client: Duplex, ctx: SessionContext): Promise<Session>;
  /** Reports a failure to the client in the protocol's own format, then closes. */
  sendError(client: Duplex, err: AppError): void;
}

/** Builds the session-bound audit hooks over the node's sink (each event written straight to JSON). */
export const sessionAudit = (sink: AuditSink, grant: GrantClaims, protocol: ProtocolName, tunnelId: string): SessionAudit =>
  sink.session(
    {
      actor: { id: grant.user.id, name: grant.user.name },
      connectionId: grant.connection.id,
      connectionName: grant.connection.name,
      grantId: grant.jti,
      sessionId: grant.sessionId,
      protocol,
    },
    { tunnelId },
  );
