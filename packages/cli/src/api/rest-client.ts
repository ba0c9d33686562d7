import { tlsFailureOf } from '@pa/kit';
import { ApiError, CliError, EXIT } from '../errors';
import { tlsFailureMessage } from './trust';

/** Path prefix of the versioned REST API. */
export const API_PREFIX = '/api/v1';

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;

/**
 * Normalises what a user types for `--server`: a base URL with no trailing
 * slash and no `/api/v1`. Without a scheme, loopback hosts get `http://` and
 * everything else `https://`.
 */
export const normalizeServer = (input: string): string => {
  let text = input.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = `${LOOPBACK_HOST.test(text.split('/')[0] ?? '') ? 'http' : 'https'}://${text}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliError(`"${input}" is not a URL; give the control plane's address, e.g. --server http://127.0.0.1:8080`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`--server must be an http:// or https:// URL, not "${input}"`);
  const path = url.pathname.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
  return `${url.protocol}//${url.host}${path}`;
};

/** The network errors that mean "nothing answered at that address". */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'EPIPE']);

const causeCode = (err: unknown): string | undefined => {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
};

/** The message for a control plane that does not answer (or whose TLS pa cannot accept). */
export const unreachableError = (server: string, cause: unknown): CliError => {
  const tls = tlsFailureOf(cause);
  if (tls) return new CliError(`cannot connect to ${server} securely: ${tlsFailureMessage(tls)}`, EXIT.UNREACHABLE, { cause });
  const code = causeCode(cause);
  const why = code && !UNREACHABLE_CODES.has(code) ? ` (${code})` : '';
  return new CliError(`cannot reach ${server}${why}: is it running? (pa login --server URL)`, EXIT.UNREACHABLE, { cause });
};

export interface RequestOptions {
  /** Bearer access token. */
  token?: string;
  /** JSON body. */
  body?: unknown;
  /** Query parameters; undefined values are left out. */
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
}

/** A successful JSON response. */
export interface ApiResponse {
  status: number;
  body: unknown;
  headers: Headers;
}

export interface RestClientOptions {
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  userAgent?: string;
}

/**
 * The control plane's REST API over fetch: JSON in and out, problem documents
 * turned into {@link ApiError}, a dead address into a "cannot reach" CliError.
 */
export class RestClient {
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly userAgent: string;

  constructor(
    readonly server: string,
    options: RestClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? fetch;
    this.userAgent = options.userAgent ?? 'pa-cli';
  }

  /** The full URL of an API path (`/auth/login` → `<server>/api/v1/auth/login`). */
  urlOf(path: string, query?: RequestOptions['query']): string {
    const url = new URL(`${this.server}${API_PREFIX}${path}`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url.toString();
  }

  /** Sends a request and returns the raw response once its status is known; errors become ApiError. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json', 'user-agent': this.userAgent, ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await this.fetchImpl(this.urlOf(path, options.query), {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
        throw new CliError(`${this.server} did not answer within ${Math.round(this.timeoutMs / 1000)} s: is it overloaded? try again`, EXIT.UNREACHABLE, { cause: err });
      }
      throw unreachableError(this.server, err);
    }
    if (res.status >= 400) throw await this.problemOf(res);
    return res;
  }

  /** Sends a request and parses the JSON answer (no body → `null`). */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> {
    const res = await this.send(method, path, options);
    const text = await res.text();
    let body: unknown = null;
    if (text.length > 0) {
      try {
        body = JSON.parse(text);
      } catch (err) {
        throw new CliError(`${this.server} answered ${method} ${path} with something that is not JSON: is --server the control plane's address?`, EXIT.ERROR, { cause: err });
      }
    }
    return { status: res.status, body, headers: res.headers };
  }

  private async problemOf(res: Response): Promise<ApiError> {
    const text = await res.text().catch(() => '');
    try {
      const p = JSON.parse(text) as { code?: unknown; detail?: unknown; title?: unknown; errors?: unknown };
      const errors = Array.isArray(p.errors)
        ? p.errors
            .filter((e): e is { path: string; message: string } => typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string')
            .map((e) => ({ path: String(e.path ?? ''), message: e.message }))
        : [];
      const detail = typeof p.detail === 'string' ? p.detail : typeof p.title === 'string' ? p.title : `${res.status} ${res.statusText}`;
      return new ApiError(res.status, typeof p.code === 'string' ? p.code : `HTTP_${res.status}`, detail, errors);
    } catch {
      return new ApiError(res.status, `HTTP_${res.status}`, `${this.server} answered ${res.status} ${res.statusText}`.trim());
    }
  }
}
