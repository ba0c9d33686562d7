/**
 * A stand-in for the control plane's REST API, for the CLI's tests (real HTTP
 * on 127.0.0.1:0). It implements what the CLI's own logic depends on —
 * login, rotating refresh tokens with reuse detection (the whole family is
 * revoked), logout, /auth/me, /info, the reachable-connection list — and
 * records every request, so admin commands can be checked for the call they
 * make. Any route can be answered differently with {@link FakeControlPlane.on}.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface FakeReply {
  status?: number;
  body?: unknown;
  contentType?: string;
}

interface Session {
  id: string;
  userId: string;
  username: string;
  revoked: boolean;
}

interface AccessToken {
  session: Session;
  expiresAt: number;
}

interface RefreshToken {
  session: Session;
  spent: boolean;
}

type Handler = (req: RecordedRequest) => FakeReply | Promise<FakeReply>;

export const problem = (status: number, code: string, detail: string): FakeReply => ({
  status,
  contentType: 'application/problem+json',
  body: { type: `https://port-authorizing.dev/errors/${code.toLowerCase()}`, title: detail, status, detail, code },
});

export class FakeControlPlane {
  readonly requests: RecordedRequest[] = [];
  /** username → password, id and roles. */
  readonly users = new Map<string, { password: string; id: string; roles: string[] }>([['alice', { password: 'alice-password-1', id: 'usr_alice', roles: ['analyst'] }]]);
  /** What `GET /connections` answers (reachable scope). */
  reachable: Record<string, unknown>[] = [
    { id: 'con_1', name: 'reports-db', protocol: 'postgres', description: 'Reporting replica', tags: { env: 'prod', team: 'analytics' }, database: 'reports', maxGrantSeconds: 3600 },
    { id: 'con_2', name: 'wiki', protocol: 'http', description: 'Team wiki', tags: { team: 'docs' }, database: null, maxGrantSeconds: 3600 },
    { id: 'con_3', name: 'echo', protocol: 'tcp', description: 'Echo service', tags: {}, database: null, maxGrantSeconds: 3600 },
  ];
  accessTtlSeconds = 900;
  refreshTtlSeconds = 7 * 86_400;
  /** What `/api/v1/info` says about gRPC (null: answer 404, as an older server). */
  grpc: { url: string; tls: boolean } | null = null;
  /** How many refreshes were answered successfully. */
  refreshes = 0;

  private readonly access = new Map<string, AccessToken>();
  private readonly refreshTokens = new Map<string, RefreshToken>();
  private readonly handlers = new Map<string, Handler>();
  private counter = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  /** Starts on 127.0.0.1:0; with `tls` (PEM certificate and key) it serves HTTPS. */
  static async start(options: { tls?: { cert: string; key: string } } = {}): Promise<FakeControlPlane> {
    let cp: FakeControlPlane | null = null;
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      void cp?.handle(req, res);
    };
    const server: Server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest) : createServer(onRequest);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    cp = new FakeControlPlane(server, `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`);
    return cp;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  /** Answers `METHOD /path` (path under /api/v1) with `handler` instead of the built-in behaviour. */
  on(method: string, path: string, handler: Handler | FakeReply): void {
    this.handlers.set(`${method.toUpperCase()} ${path}`, typeof handler === 'function' ? handler : () => handler);
  }

  /** Requests other than the token plumbing (login, refresh, info). */
  callsTo(method: string, path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && r.path === path);
  }

  /** Makes every access token issued so far expired on the server side. */
  expireAccessTokens(): void {
    for (const t of this.access.values()) t.expiresAt = 0;
  }

  /** Whether the session of `accessToken` is still alive. */
  isSessionAlive(accessToken: string): boolean {
    const t = this.access.get(accessToken);
    return Boolean(t && !t.session.revoked);
  }

  /**
   * Checks a bearer token the way the real API does; returns the session, or
   * the problem to answer. Used by the fake gRPC service too.
   */
  authenticate(authorization: string | undefined): Session | FakeReply {
    const m = /^Bearer (.+)$/.exec(authorization ?? '');
    if (!m) return problem(401, 'AUTH_REQUIRED', 'Authentication is required.');
    const t = this.access.get(m[1] as string);
    if (!t) return problem(401, 'AUTH_TOKEN_INVALID', 'The access token is not valid.');
    if (t.session.revoked) return problem(401, 'AUTH_SESSION_REVOKED', 'The session has been revoked.');
    if (t.expiresAt <= Date.now()) return problem(401, 'AUTH_TOKEN_EXPIRED', 'The access token has expired.');
    return t.session;
  }

  private issuePair(session: Session): Record<string, unknown> {
    this.counter += 1;
    const accessToken = `at_${this.counter}_${session.id}`;
    const refreshToken = `rt_${this.counter}_${session.id}`;
    this.access.set(accessToken, { session, expiresAt: Date.now() + this.accessTtlSeconds * 1000 });
    this.refreshTokens.set(refreshToken, { session, spent: false });
    return { tokenType: 'Bearer', accessToken, expiresIn: this.accessTtlSeconds, refreshToken, refreshExpiresIn: this.refreshTtlSeconds, sessionId: session.id };
  }

  private async builtIn(req: RecordedRequest): Promise<FakeReply> {
    const key = `${req.method} ${req.path}`;
    if (key === 'GET /info') return this.grpc ? { body: { version: 'test', grpc: this.grpc } } : problem(404, 'ROUTE_NOT_FOUND', 'No such endpoint.');
    if (key === 'POST /auth/login') {
      const { username, password } = (req.body ?? {}) as { username?: string; password?: string };
      const user = username ? this.users.get(username) : undefined;
      if (!user || user.password !== password) return problem(401, 'AUTH_INVALID_CREDENTIALS', 'Invalid username or password.');
      this.counter += 1;
      const session: Session = { id: `ses_${this.counter}`, userId: user.id, username: username as string, revoked: false };
      return { body: { ...this.issuePair(session), user: { id: user.id, username, email: null, displayName: username, disabled: false, roles: user.roles, createdAt: '2025-01-01T00:00:00.000Z', updatedAt: '2025-01-01T00:00:00.000Z' } } };
    }
    if (key === 'POST /auth/refresh') {
      const token = (req.body as { refreshToken?: string } | null)?.refreshToken ?? '';
      const entry = this.refreshTokens.get(token);
      if (!entry || entry.session.revoked) return problem(401, 'AUTH_REFRESH_INVALID', 'The refresh token is not valid.');
      if (entry.spent) {
        entry.session.revoked = true;
        return problem(401, 'AUTH_REFRESH_REUSED', 'The refresh token was already used; the session has been revoked.');
      }
      entry.spent = true;
      this.refreshes += 1;
      return { body: this.issuePair(entry.session) };
    }
    const auth = this.authenticate(req.headers.authorization);
    if (!('userId' in auth)) return auth;
    if (key === 'POST /auth/logout') {
      auth.revoked = true;
      return { status: 204 };
    }
    if (key === 'GET /auth/me') {
      const user = this.users.get(auth.username);
      return { body: { id: auth.userId, username: auth.username, roles: user?.roles ?? [], permissions: [], sessionId: auth.id } };
    }
    if (key === 'GET /connections' && req.query.scope !== 'all') {
      const items = this.reachable.filter((c) => !req.query.protocol || c.protocol === req.query.protocol);
      return { body: { items, nextCursor: null } };
    }
    return { status: 200, body: { ok: true } };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname.replace(/^\/api\/v1/, '');
    const recorded: RecordedRequest = { method: req.method ?? 'GET', path, query: Object.fromEntries(url.searchParams), headers: req.headers, body };
    this.requests.push(recorded);
    const custom = this.handlers.get(`${recorded.method} ${path}`);
    if (custom && !path.startsWith('/auth/') && path !== '/info') {
      // Admin routes stand behind authentication like the real ones.
      const auth = this.authenticate(req.headers.authorization);
      if (!('userId' in auth)) return this.reply(res, auth);
    }
    const reply = custom ? await custom(recorded) : await this.builtIn(recorded);
    this.reply(res, reply);
  }

  private reply(res: ServerResponse, reply: FakeReply): void {
    const status = reply.status ?? 200;
    if (reply.body === undefined || status === 204) {
      res.writeHead(status).end();
      return;
    }
    const payload = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    res.writeHead(status, { 'content-type': reply.contentType ?? 'application/json' }).end(payload);
  }
}
