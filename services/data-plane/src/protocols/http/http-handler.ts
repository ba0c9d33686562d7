import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AppError } from '@pa/kit';
import type { BackendCredentials } from '@pa/grants';
import type { CompiledPolicy } from '@pa/policy';
import type { ProtocolHandler, Session, SessionContext } from '../handler';
import { DecisionMemo } from './decision-memo';
import { isReservedCredentialHeader, type UpstreamHeaderPlan } from './headers';
import { HttpSession, type FrontDoor } from './http-session';
import { closeAfterFlush, rawProblemResponse } from './problem';
import { UpstreamPools, type UpstreamOptions } from './upstream';

/** Tuning of the HTTP handler; every field has a default. */
export interface HttpHandlerOptions {
  /** A client must send a whole request head within this (Node's `headersTimeout`; 408 then). Default 20 s. */
  readonly headersTimeoutMs?: number;
  /** A client must send a whole request, body included, within this (Node's `requestTimeout`). Default 300 s. */
  readonly requestTimeoutMs?: number;
  /** Requests a client may pipeline behind the one in flight before the connection is refused. Default 32. */
  readonly maxPipelinedRequests?: number;
  /** On node drain, how long a request in flight may still take. Default 30 s. */
  readonly drainGraceMs?: number;
  /** Connections to backends (see {@link UpstreamOptions}). */
  readonly upstream?: Partial<UpstreamOptions>;
}

/** The HTTP handler, plus `close()` for its shared pools and parser (node shutdown, tests). */
export interface HttpProtocolHandler extends ProtocolHandler {
  close(): Promise<void>;
}

const DEFAULTS = {
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 300_000,
  maxPipelinedRequests: 32,
  drainGraceMs: 30_000,
} as const;

const UPSTREAM_DEFAULTS: UpstreamOptions = {
  maxConnections: 256,
  keepAliveTimeoutMs: 4_000,
  headersTimeoutMs: 60_000,
  bodyTimeoutMs: 300_000,
  maxHeaderBytes: 64 * 1024,
};

/**
 * The private HTTP/1.1 server that parses tunnel streams: Node's own strict
 * parser (never `insecureHTTPParser`), never listening — tunnel sockets are
 * handed to it with `emit('connection')` — and shared by every session of the
 * handler with the same head limit, so a node with thousands of tunnels runs
 * one timeout sweep, not thousands.
 */
class HttpFrontDoor implements FrontDoor {
  private readonly server: Server;
  private readonly sessions = new WeakMap<Duplex, HttpSession>();

  constructor(maxHeaderBytes: number, headersTimeoutMs: number, requestTimeoutMs: number) {
    const server = createServer({
      insecureHTTPParser: false,
      requireHostHeader: true,
      joinDuplicateHeaders: false,
      maxHeaderSize: maxHeaderBytes,
      headersTimeout: headersTimeoutMs,
      requestTimeout: requestTimeoutMs,
      // Keep-alive lasts until the session's own idle timeout, not Node's 5 s default.
      keepAliveTimeout: 0,
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersTimeoutMs / 4))),
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.route(req.socket, res)?.enqueueRequest(req, res, false));
    // Expect: 100-continue is answered only once the policy and the audit allowed the request.
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.route(req.socket, res)?.enqueueRequest(req, res, true));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.route(socket, null)?.enqueueUpgrade(req, head));
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.route(socket, null)?.enqueueUpgrade(req, head));
    server.on('clientError', (err: Error, socket: Duplex) => {
      const session = this.sessions.get(socket);
      if (session !== undefined) session.onClientError(err);
      else socket.destroy();
    });
    // Node arms its header/request timeout sweep on 'listening'; this server never listens.
    server.emit('listening');
    this.server = server;
  }

  attach(socket: Duplex, session: HttpSession): void {
    this.sessions.set(socket, session);
    this.server.emit('connection', socket);
  }

  close(): void {
    this.server.close();
  }

  private route(socket: Duplex, res: ServerResponse | null): HttpSession | undefined {
    const session = this.sessions.get(socket);
    if (session === undefined) {
      res?.destroy();
      socket.destroy();
    }
    return session;
  }
}

/** Lower-case names of the headers the policy's HTTP rules look at (empty: the client's headers are not judged). */
const judgedHeaderNames = (policy: CompiledPolicy): ReadonlySet<string> => {
  const names = new Set<string>();
  for (const r of policy.rules) {
    if (r.rule.type === 'http' && r.rule.headers !== undefined) for (const name of Object.keys(r.rule.headers)) names.add(name.toLowerCase());
  }
  return names;
};

/** The credential header to inject, checked once per session. */
const credentialHeader = (c: BackendCredentials | null): UpstreamHeaderPlan['credential'] => {
  if (c === null) return null;
  if (c.kind !== 'header') {
    throw new AppError('GRANT_CREDENTIALS_UNREADABLE', { message: 'The backend credentials of this connection are not an HTTP header, so they cannot be injected.' });
  }
  const lower = c.headerName.toLowerCase();
  if (isReservedCredentialHeader(lower)) {
    throw new AppError('GRANT_CREDENTIALS_UNREADABLE', { message: `The backend credential cannot be injected as the ${c.headerName} header.` });
  }
  return { name: c.headerName, lower, value: c.value };
};

/**
 * Creates an HTTP protocol handler. Its backend pools, parser and decision memo
 * are shared by all its sessions; `close()` releases them.
 */
export const createHttpHandler = (options: HttpHandlerOptions = {}): HttpProtocolHandler => {
  const o = { ...DEFAULTS, ...options };
  const pools = new UpstreamPools({ ...UPSTREAM_DEFAULTS, ...options.upstream });
  const fronts = new Map<number, HttpFrontDoor>();
  const memo = new DecisionMemo();
  const frontFor = (maxHeaderBytes: number): HttpFrontDoor => {
    let f = fronts.get(maxHeaderBytes);
    if (f === undefined) {
      f = new HttpFrontDoor(maxHeaderBytes, o.headersTimeoutMs, o.requestTimeoutMs);
      fronts.set(maxHeaderBytes, f);
    }
    return f;
  };
  return {
    name: 'http',
    /**
     * Nothing to read before the first request, and nothing dialled: the pool
     * connects on the first allowed request. Fails fast on a grant this handler
     * cannot serve: not an HTTP connection, or credentials it cannot inject.
     */
    setup: async (client: Duplex, ctx: SessionContext): Promise<Session> => {
      if (ctx.signal.aborted) throw ctx.signal.reason instanceof AppError ? ctx.signal.reason : new AppError('NOT_READY');
      if (ctx.grant.connection.protocol !== 'http' || ctx.policy.protocol !== 'http') {
        throw new AppError('VALIDATION_FAILED', { message: 'This connection is not an HTTP connection.' });
      }
      const credential = credentialHeader(await ctx.credentials());
      const upstream = pools.get(ctx.grant.connection, ctx.settings.connectTimeoutMs);
      const judgedNames = judgedHeaderNames(ctx.policy);
      const plan: UpstreamHeaderPlan = { host: upstream.host, credential, judgeHeaders: judgedNames.size > 0, judgedNames };
      const idleMs = Math.max(1, Math.min(ctx.settings.idleTimeoutMs, ctx.grant.limits.idleTimeoutSeconds * 1000));
      // Small request/response exchanges: do not let Nagle hold a response head back.
      (client as Partial<Socket>).setNoDelay?.(true);
      const sessionOptions = { idleMs, maxPipelined: o.maxPipelinedRequests, drainGraceMs: o.drainGraceMs };
      return new HttpSession(client, ctx, frontFor(ctx.settings.maxHeaderBytes), upstream, plan, sessionOptions, memo);
    },
    /** A problem document with the error's status and `Connection: close`, then close. */
    sendError: (client: Duplex, err: AppError): void => {
      closeAfterFlush(client, rawProblemResponse(err, true));
    },
    close: async (): Promise<void> => {
      for (const f of fronts.values()) f.close();
      fronts.clear();
      await pools.close();
    },
  };
};

/** The node's HTTP handler (registered in `protocols/registry.ts`). */
export const httpHandler: HttpProtocolHandler = createHttpHandler();
