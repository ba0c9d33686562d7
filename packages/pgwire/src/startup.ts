import { AppError } from '@pa/kit';
import type { StartupMessage } from './frontend-messages';
import { PROTOCOL_LATEST_MINOR } from './protocol-codes';

/** Checks one startup setting's value. */
export type ParameterValidator = (value: string) => boolean;

const matches =
  (re: RegExp): ParameterValidator =>
  (v) =>
    re.test(v);

/** Accepts a client_encoding value that PostgreSQL resolves to UTF8 (it ignores case and punctuation). */
export const isUtf8EncodingName = (value: string): boolean => {
  const clean = value.toLowerCase().replace(/[^a-z0-9]/g, '');
  return clean === 'utf8' || clean === 'unicode';
};

const duration = matches(/^[0-9]{1,12}\s*(us|ms|s|min|h|d)?$/);

/** The default allowlist of settings (lower-case names) and their value checks. */
export const DEFAULT_STARTUP_SETTINGS: ReadonlyMap<string, ParameterValidator> = new Map<string, ParameterValidator>([
  ['application_name', matches(/^[\x20-\x7e\u00a0-\uffff]{0,256}$/u)],
  ['client_encoding', isUtf8EncodingName],
  ['standard_conforming_strings', (v) => v.toLowerCase() === 'on'],
  ['datestyle', matches(/^[A-Za-z, ]{1,64}$/)],
  ['timezone', matches(/^[A-Za-z0-9_+\-/:.]{1,64}$/)],
  ['intervalstyle', (v) => ['postgres', 'postgres_verbose', 'sql_standard', 'iso_8601'].includes(v.toLowerCase())],
  ['extra_float_digits', (v) => /^-?[0-9]{1,2}$/.test(v) && Number(v) >= -15 && Number(v) <= 3],
  ['statement_timeout', duration],
  ['lock_timeout', duration],
  ['idle_in_transaction_session_timeout', duration],
]);

/** Options of {@link checkStartupParameters}. */
export interface StartupPolicyOptions {
  /** Extra settings to accept (lower-case name → value check), e.g. `search_path`. */
  readonly extraParameters?: ReadonlyMap<string, ParameterValidator>;
}

/** What a StartupMessage asks for, once it passed the allowlist. */
export interface AcceptedStartup {
  readonly user: string;
  readonly database: string;
  /** The accepted settings with the names the client used, to pass on to the backend. */
  readonly settings: ReadonlyMap<string, string>;
  /** `_pq_.` protocol options the client asked for (none are supported). */
  readonly protocolOptions: readonly string[];
}

/** The outcome of {@link checkStartupParameters}. */
export type StartupCheck = { readonly ok: true; readonly value: AcceptedStartup } | { readonly ok: false; readonly error: AppError };

const RESERVED = new Set(['user', 'database', 'replication', 'options']);

const refuse = (message: string, parameter?: string): StartupCheck => ({
  ok: false,
  error: new AppError('PG_STARTUP_REFUSED', {
    message,
    ...(parameter !== undefined ? { meta: { parameter: parameter.slice(0, 64) } } : {}),
  }),
});

/**
 * Applies the startup parameter allowlist to a decoded StartupMessage. A client's StartupMessage may carry only the
 * parameters below; `replication`, `options` (arbitrary `-c name=value`
 * settings) and anything unknown are refused, because a setting made at
 * startup is never seen by the SQL policy (which judges `SET` statements).
 *
 * | parameter | accepted values |
 * |---|---|
 * | `user` | required, non-empty |
 * | `database` | optional (defaults to `user`, as in PostgreSQL) |
 * | `application_name` | up to 256 printable characters |
 * | `client_encoding` | UTF8 only (`UTF8`, `utf-8`, `unicode`, any case) |
 * | `standard_conforming_strings` | `on` only |
 * | `DateStyle` | letters, commas and spaces |
 * | `TimeZone` | a zone name or offset (`[A-Za-z0-9_+-/:.]`) |
 * | `IntervalStyle` | `postgres`, `postgres_verbose`, `sql_standard`, `iso_8601` |
 * | `extra_float_digits` | an integer from -15 to 3 |
 * | `statement_timeout`, `lock_timeout`, `idle_in_transaction_session_timeout` | a number with an optional unit |
 *
 * `search_path` is not accepted by default (it changes what unqualified names
 * resolve to without passing the policy); a deployment may add it through
 * {@link StartupPolicyOptions.extraParameters}. Setting names other than
 * `user`/`database` are matched case-insensitively, as PostgreSQL does; the
 * same setting sent twice under different cases is refused. Names starting
 * with `_pq_.` are protocol options: they are not refused but reported in
 * `protocolOptions`, for a NegotiateProtocolVersion answer.
 *
 * A refusal is an AppError `PG_STARTUP_REFUSED` (SQLSTATE 08004) naming the
 * parameter (never its value).
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-STARTUPMESSAGE
 */
export const checkStartupParameters = (message: StartupMessage, options: StartupPolicyOptions = {}): StartupCheck => {
  const extra = options.extraParameters;
  let user: string | undefined;
  let database: string | undefined;
  const settings = new Map<string, string>();
  const seen = new Set<string>();
  const protocolOptions: string[] = [];
  for (const [name, value] of message.parameters) {
    if (name.startsWith('_pq_.')) {
      protocolOptions.push(name);
      continue;
    }
    if (name === 'user') {
      user = value;
      continue;
    }
    if (name === 'database') {
      database = value;
      continue;
    }
    const lower = name.toLowerCase();
    if (RESERVED.has(lower)) return refuse(`Startup parameter "${name.slice(0, 64)}" is not allowed.`, name);
    const check = DEFAULT_STARTUP_SETTINGS.get(lower) ?? extra?.get(lower);
    if (!check) return refuse(`Startup parameter "${name.slice(0, 64)}" is not allowed.`, name);
    if (seen.has(lower)) return refuse(`Startup parameter "${name.slice(0, 64)}" is given twice.`, name);
    seen.add(lower);
    if (!check(value)) return refuse(`Startup parameter "${name.slice(0, 64)}" has a value that is not allowed.`, name);
    settings.set(name, value);
  }
  if (!user) return refuse('No user name was given in the startup packet.', 'user');
  return { ok: true, value: { user, database: database || user, settings, protocolOptions } };
};

/**
 * What to answer a StartupMessage's protocol version with: this package speaks
 * 3.0, so a client asking for a later minor version or for `_pq_.` options gets
 * a NegotiateProtocolVersion (newest minor 0, the options listed) before the
 * authentication request.
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
export const protocolNegotiation = (
  message: StartupMessage,
  protocolOptions: readonly string[],
): { readonly needed: boolean; readonly newestMinor: number; readonly unrecognizedOptions: readonly string[] } => ({
  needed: message.protocolVersion.minor > PROTOCOL_LATEST_MINOR || protocolOptions.length > 0,
  newestMinor: Math.min(message.protocolVersion.minor, PROTOCOL_LATEST_MINOR),
  unrecognizedOptions: protocolOptions,
});

/**
 * Checks a ParameterStatus the backend reported. The SQL lexer the policy
 * relies on is only honest with UTF8 client encoding and standard-conforming
 * strings; if the backend reports either changed (by a function, a
 * `set_config`, or a role/database default), the session must end. Returns the
 * error to end it with (`PG_UNSAFE_PARAMETER_CHANGE`), or null.
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-ASYNC
 */
export const checkBackendParameter = (name: string, value: string): AppError | null => {
  const lower = name.toLowerCase();
  if (lower === 'client_encoding' && !isUtf8EncodingName(value)) {
    return new AppError('PG_UNSAFE_PARAMETER_CHANGE', { meta: { parameter: 'client_encoding' } });
  }
  if (lower === 'standard_conforming_strings' && value.toLowerCase() !== 'on') {
    return new AppError('PG_UNSAFE_PARAMETER_CHANGE', { meta: { parameter: 'standard_conforming_strings' } });
  }
  return null;
};
