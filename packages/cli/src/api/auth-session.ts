import { z } from 'zod';
import { ApiError, CliError, EXIT } from '../errors';
import type { ConfigStore, Context } from '../store/config-file';
import { RestClient, type ApiResponse, type RequestOptions } from './rest-client';
import { Trust } from './trust';

/** Refresh the access token when it has less than this left. */
export const REFRESH_MARGIN_MS = 30_000;

/** The token pair the control plane answers to login and refresh. */
export const tokenPairSchema = z.object({
  accessToken: z.string().min(1),
  expiresIn: z.number().int().positive(),
  refreshToken: z.string().min(1),
  refreshExpiresIn: z.number().int().positive(),
  sessionId: z.string(),
});

export type TokenPair = z.infer<typeof tokenPairSchema>;

/** Stores a token pair into a context, with absolute expiry times from `now`. */
export const applyTokenPair = (ctx: Context, pair: TokenPair, now: number): void => {
  ctx.accessToken = pair.accessToken;
  ctx.accessTokenExpiresAt = new Date(now + pair.expiresIn * 1000).toISOString();
  ctx.refreshToken = pair.refreshToken;
  ctx.refreshTokenExpiresAt = new Date(now + pair.refreshExpiresIn * 1000).toISOString();
  ctx.sessionId = pair.sessionId;
};

/** Removes the tokens of a context (the server and user stay, for the next `pa login`). */
export const forgetTokens = (ctx: Context): void => {
  delete ctx.accessToken;
  delete ctx.accessTokenExpiresAt;
  delete ctx.refreshToken;
  delete ctx.refreshTokenExpiresAt;
  delete ctx.sessionId;
};

const sessionExpired = (detail?: string): CliError =>
  new CliError(`session expired: run \`pa login\`${detail ? ` (${detail})` : ''}`, EXIT.NEEDS_LOGIN);

/** Codes after which a fresh access token may succeed where the current one failed. */
export const TOKEN_RETRY_CODES: ReadonlySet<string> = new Set(['AUTH_TOKEN_EXPIRED', 'AUTH_TOKEN_INVALID']);

/**
 * A logged-in context: hands out a fresh access token, refreshing it
 * transparently when it expires within 30 s or the server says it expired.
 * Refresh tokens rotate (the old one is spent), so refreshing happens under the
 * config lock and first re-reads the file: when another `pa` process already
 * refreshed, its new pair is adopted instead of spending a token twice.
 */
export class AuthSession {
  readonly rest: RestClient;
  /** The CAs this session trusts (REST, gRPC, tunnels). */
  readonly trust: Trust;
  private ctx: Context;

  constructor(
    private readonly store: ConfigStore,
    readonly contextName: string,
    context: Context,
    private readonly now: () => number,
    rest?: RestClient,
    trust?: Trust,
  ) {
    this.ctx = context;
    this.rest = rest ?? new RestClient(context.server);
    this.trust = trust ?? Trust.system();
  }

  get context(): Readonly<Context> {
    return this.ctx;
  }

  get server(): string {
    return this.ctx.server;
  }

  /** The logged-in username (empty when unknown). */
  get username(): string {
    return this.ctx.user?.username ?? '';
  }

  private expiresSoon(ctx: Context): boolean {
    if (!ctx.accessToken || !ctx.accessTokenExpiresAt) return true;
    return Date.parse(ctx.accessTokenExpiresAt) - this.now() < REFRESH_MARGIN_MS;
  }

  /** A usable access token, refreshed first when it is about to expire. */
  async accessToken(): Promise<string> {
    if (!this.ctx.accessToken && !this.ctx.refreshToken) {
      throw new CliError(`not logged in to ${this.ctx.server}: run \`pa login\``, EXIT.NEEDS_LOGIN);
    }
    if (this.expiresSoon(this.ctx)) return this.refresh(this.ctx.accessToken ?? '');
    return this.ctx.accessToken as string;
  }

  /**
   * Replaces `staleToken` with a fresh access token. Under the config lock:
   * re-read; if another process already replaced it, use theirs; otherwise
   * spend the refresh token and store the new pair atomically. A refused
   * refresh forgets the tokens and asks the user to log in (exit code 2).
   */
  async refresh(staleToken: string): Promise<string> {
    return this.store.locked(async () => {
      const config = this.store.read();
      const ctx = config.contexts[this.contextName];
      if (!ctx || ctx.server !== this.ctx.server) throw sessionExpired(`context ${this.contextName} changed meanwhile`);
      if (ctx.accessToken && ctx.accessToken !== staleToken && !this.expiresSoon(ctx)) {
        this.ctx = ctx;
        return ctx.accessToken;
      }
      const refreshToken = ctx.refreshToken;
      if (!refreshToken || (ctx.refreshTokenExpiresAt && Date.parse(ctx.refreshTokenExpiresAt) <= this.now())) {
        forgetTokens(ctx);
        this.store.write(config);
        this.ctx = ctx;
        throw sessionExpired();
      }
      let pair: TokenPair;
      try {
        const res = await this.rest.request('POST', '/auth/refresh', { body: { refreshToken } });
        pair = tokenPairSchema.parse(res.body);
      } catch (err) {
        if (err instanceof ApiError && (err.status === 401 || err.status === 400 || err.status === 403)) {
          forgetTokens(ctx);
          this.store.write(config);
          this.ctx = ctx;
          throw sessionExpired(err.detail);
        }
        if (err instanceof z.ZodError) throw new CliError(`${this.ctx.server} answered the token refresh with something unexpected`, EXIT.ERROR, { cause: err });
        throw err;
      }
      applyTokenPair(ctx, pair, this.now());
      this.store.write(config);
      this.ctx = ctx;
      return pair.accessToken;
    });
  }

  /**
   * Runs `fn` with an access token; when it fails in a way a fresh token can
   * fix (`shouldRetry`), refreshes once and runs it again.
   */
  async withToken<T>(fn: (token: string) => Promise<T>, shouldRetry: (err: unknown) => boolean): Promise<T> {
    const token = await this.accessToken();
    try {
      return await fn(token);
    } catch (err) {
      if (!shouldRetry(err)) throw err;
      return fn(await this.refresh(token));
    }
  }

  /** An authenticated JSON request to the REST API. */
  async request(method: string, path: string, options: Omit<RequestOptions, 'token'> = {}): Promise<ApiResponse> {
    return this.withToken((token) => this.rest.request(method, path, { ...options, token }), isExpiredApiToken);
  }

  /** An authenticated request whose body the caller reads (streams). */
  async send(method: string, path: string, options: Omit<RequestOptions, 'token'> = {}): Promise<Response> {
    return this.withToken((token) => this.rest.send(method, path, { ...options, token }), isExpiredApiToken);
  }
}

/** Whether a REST error says the access token (not the session) is no good. */
export const isExpiredApiToken = (err: unknown): boolean => err instanceof ApiError && err.status === 401 && TOKEN_RETRY_CODES.has(err.code);
