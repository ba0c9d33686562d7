/**
 * Header rules of the HTTP data path (SECURITY.md, "HTTP data path"): what a
 * client may send, what never crosses the proxy, and what the proxy adds. Pure
 * functions over Node's `rawHeaders` (one flat `[name, value, …]` array per
 * message), written for the hot path: one pass, one output array, and lower-
 * casing only the names.
 */

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) and framing headers the proxy re-frames
 * itself. Never forwarded in either direction; `proxy-*` is matched by prefix.
 * `expect` is answered by the proxy (100-continue after the policy allowed the
 * request), `http2-settings` only means something with `Upgrade: h2c`.
 */
const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings']);

/**
 * Headers the proxy owns on the way in: its own `x-pa-*` namespace and the
 * forwarding headers a backend might trust for the client's address. A client
 * must not be able to set any of them; the proxy sets only `x-pa-request-id`.
 */
const PROXY_OWNED: ReadonlySet<string> = new Set(['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip']);

/** Connection options that name no header (`Connection: keep-alive, close, upgrade`). */
const CONNECTION_OPTIONS: ReadonlySet<string> = new Set(['keep-alive', 'close', 'upgrade']);

/** The request id header the proxy adds: `<tunnelId>.<n>`, also in the request's audit events. */
export const REQUEST_ID_HEADER = 'x-pa-request-id';

/** Whether a lower-case header name is never forwarded upstream, whatever the client sends. */
export const isStrippedRequestHeader = (lower: string): boolean =>
  HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || lower.startsWith('x-pa-') || PROXY_OWNED.has(lower);

/** Whether a lower-case header name is never forwarded from the backend to the client. */
export const isStrippedResponseHeader = (lower: string): boolean => HOP_BY_HOP.has(lower) || lower.startsWith('proxy-');

/**
 * Header names a connection's credential may not use: injecting one of them
 * would break framing or routing, or collide with a header the proxy owns.
 */
export const isReservedCredentialHeader = (lower: string): boolean =>
  isStrippedRequestHeader(lower) || lower === 'host' || lower === 'content-length';

/**
 * Extra header names listed in a `Connection` header (RFC 9110 §7.6.1: the
 * sender marks them hop-by-hop). Null when it lists only connection options,
 * which is the common case and allocates nothing.
 */
export const connectionTokens = (value: string | undefined): ReadonlySet<string> | null => {
  if (value === undefined) return null;
  const lower = value.toLowerCase();
  if (CONNECTION_OPTIONS.has(lower)) return null;
  let tokens: Set<string> | null = null;
  for (const part of lower.split(',')) {
    const t = part.trim();
    if (t === '' || CONNECTION_OPTIONS.has(t)) continue;
    (tokens ??= new Set()).add(t);
  }
  return tokens;
};

/** What the proxy injects into every forwarded request of one session. */
export interface UpstreamHeaderPlan {
  /** `Host` as the backend expects it (`host[:port]`). */
  readonly host: string;
  /** The connection's credential header, or null when it injects none. */
  readonly credential: { readonly name: string; readonly lower: string; readonly value: string } | null;
  /** Whether the policy has header conditions (then the filtered client headers are judged). */
  readonly judgeHeaders: boolean;
  /**
   * Lower-case names the policy's header conditions look at. Request trailers
   * with these names are not forwarded: they arrive after the decision, and a
   * backend that merges trailers into the head would read an unjudged value.
   */
  readonly judgedNames?: ReadonlySet<string>;
}

/** A request head checked and rewritten for the backend. */
export type UpstreamHead =
  | {
      readonly ok: true;
      /** Flat `[name, value, …]` list for the backend, the proxy's own headers last. */
      readonly headers: string[];
      /** The client's headers as they reach the backend (minus the proxy's own), when the policy judges headers. */
      readonly judged: Record<string, string[]> | undefined;
      /** The request carries a body (Content-Length > 0 or Transfer-Encoding). */
      readonly hasBody: boolean;
    }
  | { readonly ok: false; readonly reason: string };

/**
 * Checks a request head and builds the backend's header list in one pass:
 * refuses duplicate `Host` and header names with `_` (a backend may read
 * `X_User` as `X-User`: a way around header rules and stripping), drops hop-by-
 * hop, connection-listed and proxy-owned headers and the credential header,
 * then appends `Host`, the credential and the request id.
 */
export const buildUpstreamHead = (raw: readonly string[], connection: string | undefined, plan: UpstreamHeaderPlan, requestId: string): UpstreamHead => {
  const listed = connectionTokens(connection);
  const credential = plan.credential;
  const out: string[] = [];
  const judged: Record<string, string[]> | undefined = plan.judgeHeaders ? {} : undefined;
  let hosts = 0;
  let hasBody = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (name.includes('_')) return { ok: false, reason: `header names with "_" are refused (${name})` };
    const lower = name.toLowerCase();
    if (lower === 'host') {
      hosts += 1;
      if (hosts > 1) return { ok: false, reason: 'duplicate Host header' };
      continue;
    }
    if (lower === 'transfer-encoding') hasBody = true;
    else if (lower === 'content-length' && value !== '0') hasBody = true;
    if (isStrippedRequestHeader(lower) || lower === credential?.lower || listed?.has(lower) === true) continue;
    out.push(name, value);
    if (judged !== undefined) (judged[lower] ??= []).push(value);
  }
  out.push('host', plan.host);
  if (credential !== null) out.push(credential.name, credential.value);
  out.push(REQUEST_ID_HEADER, requestId);
  return { ok: true, headers: out, judged, hasBody };
};

/**
 * The backend's response headers for the client: hop-by-hop and connection-
 * listed headers dropped (Node re-frames the body), everything else kept in
 * order with its original case. `raw` is undici's flat list of Buffers.
 */
export const filterResponseHeaders = (raw: readonly Buffer[]): string[] => {
  const out: string[] = [];
  let listed: ReadonlySet<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1');
    const lower = name.toLowerCase();
    if (lower === 'connection') listed = connectionTokens((raw[i + 1] as Buffer).toString('latin1'));
    if (isStrippedResponseHeader(lower)) continue;
    out.push(name, (raw[i + 1] as Buffer).toString('latin1'));
  }
  if (listed === null) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) {
    if (!listed.has((out[i] as string).toLowerCase())) kept.push(out[i] as string, out[i + 1] as string);
  }
  return kept;
};

/**
 * Fields a trailer must not carry (RFC 9110 §6.5.1): framing, routing, request
 * modifiers (controls, conditionals, range), authentication and cookies, the
 * content's own description, and response control data. Recipients that merge
 * trailers into the head would otherwise let one override what was framed,
 * judged or injected, so the proxy drops them in both directions.
 */
const NOT_IN_TRAILERS: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'content-encoding',
  'content-type',
  'content-range',
  'authorization',
  'www-authenticate',
  'authentication-info',
  'cookie',
  'set-cookie',
  'cache-control',
  'expires',
  'age',
  'date',
  'pragma',
  'vary',
  'location',
  'retry-after',
  'max-forwards',
  'range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
]);

/**
 * The client's request trailers for the backend (flat `[name, value, …]`, from
 * Node's `rawTrailers`): dropped are the names the head filter drops (hop-by-
 * hop, connection-listed, proxy-owned, the credential, `_` in the name), the
 * fields no trailer may carry, and the names the policy judges. Trailers are
 * never judged themselves: they arrive after the request was decided.
 */
export const filterRequestTrailers = (raw: readonly string[], connection: string | undefined, plan: UpstreamHeaderPlan): string[] => {
  const listed = connectionTokens(connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (name.includes('_') || isStrippedRequestHeader(lower) || NOT_IN_TRAILERS.has(lower) || lower === plan.credential?.lower) continue;
    if (listed?.has(lower) === true || plan.judgedNames?.has(lower) === true) continue;
    out.push(name, raw[i + 1] as string);
  }
  return out;
};

/**
 * The backend's response trailers for the client, as `[name, value]` pairs for
 * Node's `addTrailers`: hop-by-hop names, names listed in the response head's
 * `Connection` (`headConnection`), and fields no trailer may carry are dropped.
 */
export const filterResponseTrailers = (raw: readonly (Buffer | string)[], headConnection: string | undefined): Array<[string, string]> => {
  const listed = connectionTokens(headConnection);
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]?.toString('latin1') ?? '';
    const lower = name.toLowerCase();
    if (isStrippedResponseHeader(lower) || NOT_IN_TRAILERS.has(lower) || listed?.has(lower) === true) continue;
    out.push([name, raw[i + 1]?.toString('latin1') ?? '']);
  }
  return out;
};

/** Upgrade-related names removed when an upgrade is ignored (the header fields, and the Connection options naming them). */
const UPGRADE_FIELDS: ReadonlySet<string> = new Set(['upgrade', 'http2-settings']);

/**
 * A request head rebuilt without its upgrade (RFC 9110 §7.8: a server may ignore
 * `Upgrade`): `Upgrade` and `HTTP2-Settings` are dropped and `Connection` loses the
 * options naming them (and is dropped when nothing else is left). Everything
 * else is written back as Node's strict parser read it (names and values
 * already checked: no CR, LF or NUL), so the parser reads the same request,
 * body framing included, with no upgrade.
 */
export const requestHeadWithoutUpgrade = (method: string, target: string, httpVersion: string, raw: readonly string[]): string => {
  let head = `${method} ${target} HTTP/${httpVersion}\r\n`;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    let value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (UPGRADE_FIELDS.has(lower)) continue;
    if (lower === 'connection') {
      value = value
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== '' && !UPGRADE_FIELDS.has(t.toLowerCase()))
        .join(', ');
      if (value === '') continue;
    }
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
};
