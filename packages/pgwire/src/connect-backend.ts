import { isIP, type Socket, connect as netConnect } from 'node:net';
import { type ConnectionOptions, type TLSSocket, checkServerIdentity, connect as tlsConnect } from 'node:tls';
import { AppError } from '@pa/kit';
import {
  BackendFramer,
  type BackendKey,
  readAuthentication,
  readBackendKeyData,
  readErrorResponse,
  readParameterStatus,
  readReadyForQuery,
} from './backend-framer';
import { passwordMessage, saslInitialResponse, saslResponse, sslRequest, startupMessage } from './frontend-builders';
import { AuthCode, BackendCode, type TransactionStatus } from './protocol-codes';
import { backendProtocolViolation } from './protocol-error';
import { md5PasswordResponse, SCRAM_SHA_256, ScramClient, ScramError } from './scram';
import { checkBackendParameter } from './startup';

/**
 * How the proxy secures its connection to the backend, as libpq's `sslmode`:
 * - `disable`: plain TCP;
 * - `require`: TLS, certificate not checked (protects against passive eavesdropping only);
 * - `verify-ca`: TLS, certificate chain checked against `ca`;
 * - `verify-full`: as `verify-ca`, and the certificate must name the host (`servername`, else `host`).
 * A server that declines TLS is refused in every mode but `disable`.
 *
 * @see https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION
 */
export interface BackendTlsOptions {
  readonly mode: 'disable' | 'require' | 'verify-ca' | 'verify-full';
  /** Trusted CA certificate(s), PEM. Defaults to Node's bundled roots. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** Host name to verify (and to send as SNI); defaults to `host`. */
  readonly servername?: string;
  /** Client certificate and key, PEM, for servers that demand one. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

/** Authentication methods the connector will perform when a server asks (libpq's `require_auth`). */
export type BackendAuthMethod = 'scram-sha-256' | 'md5' | 'password' | 'trust';

/** Options of {@link connectBackend}. */
export interface ConnectBackendOptions {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string;
  /** Defaults to `user`. */
  readonly database?: string;
  /**
   * Further startup settings (already through the allowlist). `client_encoding`
   * is always sent as UTF8; `user`, `database`, `replication` and `options` are refused here.
   */
  readonly params?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  readonly tls: BackendTlsOptions;
  /** Deadline for the whole startup (TCP, TLS, authentication, ReadyForQuery). Default 10 s. */
  readonly connectTimeoutMs?: number;
  /**
   * Methods the connector agrees to; a server asking for another one is
   * refused (a hostile server cannot downgrade SCRAM to cleartext unless
   * `password` is listed). Default: all four.
   */
  readonly authMethods?: readonly BackendAuthMethod[];
  /** Cap on SCRAM iterations a server may ask for. Default 1,000,000. */
  readonly maxScramIterations?: number;
  /** Cap on any startup-phase message from the server. Default 64 KiB. */
  readonly maxMessageLength?: number;
}

/** An authenticated backend session, ready for queries. */
export interface BackendConnection {
  /**
   * The connection, paused, with none of the connector's listeners left:
   * attach your own `error` handler at once, then resume.
   */
  readonly socket: Socket | TLSSocket;
  /** ParameterStatus values reported during startup (name → value). */
  readonly parameters: ReadonlyMap<string, string>;
  /** The backend's cancel key (never to be shown to a client); null if the server sent none. */
  readonly backendKey: BackendKey | null;
  /** Bytes that arrived after ReadyForQuery in the same read; hand them to the relay first. */
  readonly leftover: Buffer;
  /** Transaction status of the first ReadyForQuery ('I' normally). */
  readonly transactionStatus: TransactionStatus;
  /** The authentication method the server asked for. */
  readonly authMethod: BackendAuthMethod;
  /** True when the connection is TLS. */
  readonly isEncrypted: boolean;
}

const ALL_METHODS: readonly BackendAuthMethod[] = ['scram-sha-256', 'md5', 'password', 'trust'];
const FORBIDDEN_PARAMS = new Set(['user', 'database', 'replication', 'options', 'client_encoding']);

/** Builds the TLS options for a mode (exported for {@link sendCancel}). */
export const tlsConnectionOptions = (host: string, tls: BackendTlsOptions, socket: Socket): ConnectionOptions => {
  const servername = tls.servername ?? host;
  const verify = tls.mode === 'verify-ca' || tls.mode === 'verify-full';
  return {
    socket,
    ...(isIP(servername) === 0 ? { servername } : {}),
    ...(tls.ca !== undefined ? { ca: tls.ca as string | Buffer | (string | Buffer)[] } : {}),
    ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
    ...(tls.key !== undefined ? { key: tls.key } : {}),
    minVersion: 'TLSv1.2',
    rejectUnauthorized: verify,
    checkServerIdentity: (_name, cert) => (tls.mode === 'verify-full' ? checkServerIdentity(servername, cert) : undefined),
  };
};

/**
 * Opens a TCP connection, asks for TLS (SSLRequest) unless disabled, and
 * upgrades. Refuses a server that answers 'N' when TLS was asked for, and any
 * byte the server sends after its one-byte answer before the handshake
 * (CVE-2021-23222). Internal: shared by {@link connectBackend} and {@link sendCancel}.
 */
export const openBackendSocket = (
  host: string,
  port: number,
  tls: BackendTlsOptions,
  signal: AbortSignal,
): Promise<Socket | TLSSocket> =>
  new Promise((resolve, reject) => {
    const raw = netConnect({ host, port });
    let done = false;
    let current: Socket | TLSSocket = raw;
    const finish = (err: AppError | null): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      raw.off('data', onAnswer);
      raw.off('error', onRawError);
      raw.off('close', onClose);
      if (err) {
        current.destroy();
        raw.destroy();
        reject(err);
      } else {
        current.off('error', onTlsError);
        current.off('close', onClose);
        resolve(current);
      }
    };
    const onAbort = (): void => finish(new AppError('PG_BACKEND_TIMEOUT'));
    let connected = false;
    const onRawError = (err: Error): void =>
      finish(new AppError(connected ? 'PG_BACKEND_CONNECTION_LOST' : 'PG_BACKEND_UNAVAILABLE', { cause: err }));
    const onTlsError = (err: Error): void => finish(new AppError('PG_BACKEND_TLS_FAILED', { cause: err }));
    const onClose = (): void => finish(new AppError('PG_BACKEND_CONNECTION_LOST'));
    const onAnswer = (chunk: Buffer): void => {
      raw.off('data', onAnswer);
      raw.pause();
      if (chunk.length !== 1) {
        finish(backendProtocolViolation('Unexpected data after the SSLRequest answer.'));
        return;
      }
      if (chunk[0] !== 0x53) {
        finish(new AppError('PG_BACKEND_TLS_FAILED', { message: 'The database server does not accept TLS connections.' }));
        return;
      }
      const secure = tlsConnect(tlsConnectionOptions(host, tls, raw));
      current = secure;
      secure.on('error', onTlsError);
      secure.once('secureConnect', () => finish(null));
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    raw.on('error', onRawError);
    raw.on('close', onClose);
    raw.once('connect', () => {
      connected = true;
      raw.setNoDelay(true);
      if (tls.mode === 'disable') {
        finish(null);
        return;
      }
      raw.on('data', onAnswer);
      raw.write(sslRequest());
    });
  });

/**
 * Connects the proxy to a PostgreSQL backend with the credentials it injects:
 * TCP, optional TLS, StartupMessage, authentication (SCRAM-SHA-256 with the
 * server signature verified, MD5, cleartext, or none), then ParameterStatus
 * and BackendKeyData up to the first ReadyForQuery.
 *
 * Failures are AppErrors: `PG_BACKEND_UNAVAILABLE` (refused, unreachable),
 * `PG_BACKEND_TIMEOUT`, `PG_BACKEND_TLS_FAILED`, `PG_BACKEND_AUTH_FAILED` and
 * `PG_BACKEND_REJECTED` (with the backend's SQLSTATE in `meta.backendSqlstate`
 * and its message only in `cause`), `PG_BACKEND_PROTOCOL_VIOLATION`,
 * `PG_BACKEND_CONNECTION_LOST`, and `PG_UNSAFE_PARAMETER_CHANGE` if the
 * server reports a client_encoding other than UTF8 or
 * standard_conforming_strings off. The socket is closed on every failure.
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
export const connectBackend = async (options: ConnectBackendOptions): Promise<BackendConnection> => {
  const params = options.params instanceof Map ? [...options.params.entries()] : Object.entries(options.params ?? {});
  for (const [name] of params) {
    if (FORBIDDEN_PARAMS.has(name.toLowerCase())) throw new RangeError(`Startup parameter ${name} cannot be passed to connectBackend.`);
  }
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const socket = await openBackendSocket(options.host, options.port, options.tls, controller.signal);
    const startup = new Map<string, string>([
      ['user', options.user],
      ['database', options.database ?? options.user],
      ['client_encoding', 'UTF8'],
      ...params,
    ]);
    return await runStartup(socket, options, startupMessage(startup), controller.signal);
  } finally {
    clearTimeout(timer);
  }
};

interface PendingFrame {
  readonly type: number;
  readonly body: Buffer;
}

/** Drives the startup exchange on an open socket. */
const runStartup = (
  socket: Socket | TLSSocket,
  options: ConnectBackendOptions,
  startup: Buffer,
  signal: AbortSignal,
): Promise<BackendConnection> =>
  new Promise((resolve, reject) => {
    const allowed = new Set(options.authMethods ?? ALL_METHODS);
    const framer = new BackendFramer({ inspect: 'all', maxInspectedLength: options.maxMessageLength ?? 65536 });
    const parameters = new Map<string, string>();
    const queue: PendingFrame[] = [];
    let backendKey: BackendKey | null = null;
    let method: BackendAuthMethod | null = null;
    let scram: ScramClient | null = null;
    let authenticated = false;
    let leftover: Buffer = Buffer.alloc(0);
    let readyStatus: TransactionStatus | null = null;
    let busy = false;
    let done = false;

    const cleanup = (): void => {
      signal.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const fail = (err: AppError): void => {
      if (done) return;
      done = true;
      cleanup();
      socket.destroy();
      reject(err);
    };
    const authFailed = (message: string, cause?: unknown): AppError =>
      new AppError('PG_BACKEND_AUTH_FAILED', { message, ...(cause !== undefined ? { cause } : {}) });
    const onAbort = (): void => fail(new AppError('PG_BACKEND_TIMEOUT'));
    const onError = (err: Error): void => fail(new AppError('PG_BACKEND_CONNECTION_LOST', { cause: err }));
    const onClose = (): void => fail(new AppError('PG_BACKEND_CONNECTION_LOST'));
    const send = (bytes: Buffer): void => {
      if (!done) socket.write(bytes);
    };
    const requireMethod = (m: BackendAuthMethod): boolean => {
      if (method !== null) {
        fail(authFailed('The database server asked for a second authentication method.'));
        return false;
      }
      if (!allowed.has(m)) {
        fail(authFailed('The database server asked for an authentication method that is not allowed.'));
        return false;
      }
      method = m;
      return true;
    };

    const handleAuth = async (body: Buffer): Promise<void> => {
      const r = readAuthentication(body);
      if (!r.ok) return fail(r.error);
      const { code, data } = r.value;
      if (authenticated) return fail(backendProtocolViolation('Authentication request after AuthenticationOk.'));
      switch (code) {
        case AuthCode.Ok:
          if (method === null && !requireMethod('trust')) return;
          if (scram && !scram.isServerVerified) return fail(authFailed('The database server skipped SCRAM verification.'));
          if ((method === 'password' || method === 'md5') && scram) return fail(authFailed('Inconsistent authentication exchange.'));
          authenticated = true;
          return;
        case AuthCode.CleartextPassword:
          if (data.length !== 0) return fail(backendProtocolViolation('Malformed authentication request.'));
          if (!requireMethod('password')) return;
          return send(passwordMessage(options.password ?? ''));
        case AuthCode.MD5Password:
          if (data.length !== 4) return fail(backendProtocolViolation('Malformed authentication request.'));
          if (!requireMethod('md5')) return;
          return send(passwordMessage(md5PasswordResponse(options.user, options.password ?? '', data)));
        case AuthCode.SASL: {
          const mechanisms = data.toString('utf8').split('\0');
          if (mechanisms.at(-1) !== '' || mechanisms.at(-2) !== '') return fail(backendProtocolViolation('Malformed SASL mechanism list.'));
          if (!mechanisms.includes(SCRAM_SHA_256)) return fail(authFailed('The database server offers no supported SASL mechanism.'));
          if (!requireMethod('scram-sha-256')) return;
          scram = new ScramClient(options.password ?? '', { maxIterations: options.maxScramIterations ?? 1_000_000 });
          return send(saslInitialResponse(SCRAM_SHA_256, scram.clientFirstMessage()));
        }
        case AuthCode.SASLContinue:
          if (!scram) return fail(backendProtocolViolation('SASL continuation without a SASL exchange.'));
          return send(saslResponse(await scram.clientFinalMessage(data)));
        case AuthCode.SASLFinal:
          if (!scram) return fail(backendProtocolViolation('SASL final message without a SASL exchange.'));
          scram.verifyServerFinal(data);
          return;
        default:
          return fail(authFailed('The database server asked for an unsupported authentication method.'));
      }
    };

    const handle = async (f: PendingFrame): Promise<void> => {
      switch (f.type) {
        case BackendCode.Authentication:
          return handleAuth(f.body);
        case BackendCode.ErrorResponse: {
          const r = readErrorResponse(f.body);
          if (!r.ok) return fail(r.error);
          const backendSqlstate = r.value.code;
          const cause = new Error(`Backend error ${backendSqlstate}: ${r.value.message}`);
          // Class 28 is "invalid authorization specification" (wrong password, no pg_hba entry).
          const code = backendSqlstate.startsWith('28') ? 'PG_BACKEND_AUTH_FAILED' : 'PG_BACKEND_REJECTED';
          return fail(new AppError(code, { cause, meta: { backendSqlstate } }));
        }
        case BackendCode.NoticeResponse:
        case BackendCode.NegotiateProtocolVersion:
          return;
        case BackendCode.ParameterStatus: {
          if (!authenticated) return fail(backendProtocolViolation('ParameterStatus before authentication.'));
          const r = readParameterStatus(f.body);
          if (!r.ok) return fail(r.error);
          const unsafe = checkBackendParameter(r.value.name, r.value.value);
          if (unsafe) return fail(unsafe);
          parameters.set(r.value.name, r.value.value);
          return;
        }
        case BackendCode.BackendKeyData: {
          if (!authenticated || backendKey) return fail(backendProtocolViolation('Unexpected BackendKeyData.'));
          const r = readBackendKeyData(f.body);
          if (!r.ok) return fail(r.error);
          backendKey = r.value;
          return;
        }
        case BackendCode.ReadyForQuery: {
          if (!authenticated) return fail(backendProtocolViolation('ReadyForQuery before authentication.'));
          const r = readReadyForQuery(f.body);
          if (!r.ok) return fail(r.error);
          readyStatus = r.value;
          return;
        }
        default:
          return fail(backendProtocolViolation('Unexpected message during startup.'));
      }
    };

    const drain = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      try {
        while (!done && queue.length > 0) {
          const f = queue.shift() as PendingFrame;
          await handle(f);
          if (!done && readyStatus !== null) {
            done = true;
            cleanup();
            resolve({
              socket,
              parameters,
              backendKey,
              leftover,
              transactionStatus: readyStatus,
              authMethod: method ?? 'trust',
              isEncrypted: 'encrypted' in socket && socket.encrypted === true,
            });
          }
        }
      } catch (err) {
        fail(err instanceof ScramError ? authFailed(err.message, err) : err instanceof AppError ? err : new AppError('INTERNAL', { cause: err }));
      } finally {
        busy = false;
      }
    };

    let stopped = false;
    const onData = (chunk: Buffer): void => {
      if (stopped) return;
      const err = framer.push(chunk, (frame) => {
        if (stopped) return;
        queue.push({ type: frame.type, body: Buffer.from(frame.body as Buffer) });
        if (frame.type === BackendCode.ReadyForQuery) {
          // Whatever follows the first ReadyForQuery belongs to the session, not to startup.
          stopped = true;
          leftover = Buffer.from(chunk.subarray(frame.end));
          socket.pause();
          socket.off('data', onData);
        }
      });
      if (err && !stopped) {
        fail(err);
        return;
      }
      void drain();
    };

    if (signal.aborted) {
      fail(new AppError('PG_BACKEND_TIMEOUT'));
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('data', onData);
    socket.resume();
    socket.write(startup);
  });
