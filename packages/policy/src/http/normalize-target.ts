/**
 * Request-target normalisation: done once, before judging, and the result is
 * what the proxy forwards, so the backend sees exactly what was judged.
 *
 * Only origin-form targets (`/path?query`) are accepted. The path is cleaned as
 * follows: percent-escapes are checked and upper-cased; escapes of unreserved
 * characters (`A-Z a-z 0-9 - . _ ~`) are decoded; escapes of `/`, `\` and NUL
 * are refused (a backend might decode them into structure); runs of `/` are
 * merged; `.` and `..` segments are resolved (RFC 3986 §5.2.4, never above the
 * root). The query keeps its text, with the same escape checks and clean-up.
 */

/** A normalised request target. */
export interface NormalizedTarget {
  readonly ok: true;
  /** What to forward: `path` plus `?query` when there is a query. */
  readonly target: string;
  readonly path: string;
  /** The query string without `?`, or undefined when there is none. */
  readonly query: string | undefined;
}

/** A request target that is refused, with the reason. */
export interface RejectedTarget {
  readonly ok: false;
  readonly reason: string;
}

/** Longest request target accepted. */
export const MAX_TARGET_LENGTH = 8192;

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const HEX = /^[0-9A-Fa-f]{2}$/;
// Characters allowed raw in a path or query (RFC 3986 pchar / query, plus `%` for escapes).
const ALLOWED_RAW = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*$/;

const reject = (reason: string): RejectedTarget => ({ ok: false, reason });

/** Checks escapes, decodes unreserved ones, upper-cases the rest. Returns a reason string on refusal. */
const cleanEscapes = (s: string, forbidSlash: boolean): { ok: true; value: string } | { ok: false; reason: string } => {
  let out = '';
  for (let i = 0; i < s.length; i += 1) {
    const ch = s[i] as string;
    if (ch !== '%') {
      out += ch;
      continue;
    }
    const hex = s.slice(i + 1, i + 3);
    if (!HEX.test(hex)) return { ok: false, reason: 'malformed percent-escape' };
    const code = parseInt(hex, 16);
    if (code === 0) return { ok: false, reason: 'encoded NUL (%00) is refused' };
    if (forbidSlash && code === 0x2f) return { ok: false, reason: 'encoded slash (%2F) in the path is refused' };
    if (forbidSlash && code === 0x5c) return { ok: false, reason: 'encoded backslash (%5C) in the path is refused' };
    const decoded = String.fromCharCode(code);
    out += code < 0x80 && UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
    i += 2;
  }
  return { ok: true, value: out };
};

/** RFC 3986 §5.2.4 on a path that starts with `/` and has no empty segments. */
const removeDotSegments = (path: string): string => {
  const segments = path.split('/').slice(1);
  const out: string[] = [];
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (seg === '.' || seg === '..') {
      if (seg === '..') out.pop();
      if (last) out.push('');
      return;
    }
    out.push(seg);
  });
  return `/${out.join('/')}`;
};

/**
 * Normalises an HTTP request target, or says why it is refused. Idempotent:
 * normalising a normalised target returns it unchanged. The result never
 * contains `.` or `..` segments, `//`, or escapes of unreserved characters.
 */
export const normalizeHttpTarget = (target: unknown): NormalizedTarget | RejectedTarget => {
  if (typeof target !== 'string') return reject('request target is not a string');
  if (target.length === 0) return reject('empty request target');
  if (target.length > MAX_TARGET_LENGTH) return reject(`request target longer than ${MAX_TARGET_LENGTH} characters`);
  if (target === '*') return reject('asterisk-form targets (OPTIONS *) are refused');
  if (!target.startsWith('/')) return reject('only origin-form targets (starting with /) are accepted; absolute-form and authority-form are refused');
  if (target.startsWith('//')) return reject('targets starting with // are refused');
  if (target.includes('\\')) return reject('backslash in the request target is refused');
  if (target.includes('#')) return reject('fragment (#) in the request target is refused');
  if (!ALLOWED_RAW.test(target)) return reject('request target contains characters that must be percent-encoded');

  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const rawQuery = q < 0 ? undefined : target.slice(q + 1);

  const path = cleanEscapes(rawPath, true);
  if (!path.ok) return reject(path.reason);
  const merged = path.value.replace(/\/{2,}/g, '/');
  const resolved = removeDotSegments(merged).replace(/\/{2,}/g, '/');

  let query: string | undefined;
  if (rawQuery !== undefined && rawQuery !== '') {
    const cleaned = cleanEscapes(rawQuery, false);
    if (!cleaned.ok) return reject(cleaned.reason);
    query = cleaned.value;
  }
  return { ok: true, target: query === undefined ? resolved : `${resolved}?${query}`, path: resolved, query };
};

/** Splits a normalised query into decoded parameters (`+` is a space; undecodable escapes are kept as written). */
export const parseQueryParams = (query: string | undefined): Map<string, string[]> => {
  const params = new Map<string, string[]>();
  if (query === undefined) return params;
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decodeLenient(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : decodeLenient(pair.slice(eq + 1));
    const list = params.get(name);
    if (list) list.push(value);
    else params.set(name, [value]);
  }
  return params;
};

const decodeLenient = (s: string): string => {
  const spaced = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
};
