import { Writable } from 'node:stream';
import winston from 'winston';

/** Keys whose values never reach a log line, at any depth (compared case-insensitively). */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'password',
  'newpassword',
  'currentpassword',
  'passwordhash',
  'password_hash',
  'secret',
  'token',
  'accesstoken',
  'access_token',
  'refreshtoken',
  'refresh_token',
  'authorization',
  'cookie',
  'set-cookie',
  'masterkey',
  'privatekey',
  'private_key',
  'credential',
  'credentials',
  'grant',
  'cancelkey',
  'secretkey',
  'headervalue',
]);

export const REDACTED = '[REDACTED]';

/** Returns a copy of `value` with every secret key's value replaced by `[REDACTED]`. */
export const redact = (value: unknown, depth = 0): unknown => {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    // Only the useful, bounded parts: driver errors carry whole clients and sockets.
    const code = (value as { code?: unknown }).code;
    return {
      name: value.name,
      message: value.message,
      ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
      stack: value.stack,
      ...(value.cause !== undefined ? { cause: redact(value.cause, depth + 1) } : {}),
    };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEYS.has(k.toLowerCase()) ? REDACTED : redact(v, depth + 1);
  }
  return out;
};

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (SECRET_KEYS.has(key.toLowerCase())) (info as Record<string, unknown>)[key] = REDACTED;
    else (info as Record<string, unknown>)[key] = redact((info as Record<string, unknown>)[key]);
  }
  return info;
});

export type Logger = winston.Logger;

export interface LoggerOptions {
  service: string;
  level?: string;
  /** Extra transports (tests capture output this way). Defaults to stdout JSON. */
  transports?: winston.transport[];
  silent?: boolean;
}

/** The only way to make a logger: JSON, one line a record, secrets redacted. */
export const createLogger = (options: LoggerOptions): Logger =>
  winston.createLogger({
    level: options.level ?? 'info',
    silent: options.silent ?? false,
    defaultMeta: { service: options.service },
    format: winston.format.combine(
      redactFormat(),
      winston.format.timestamp(),
      winston.format.errors({ stack: true }),
      winston.format.json(),
    ),
    transports: options.transports ?? [new winston.transports.Console()],
  });

/** A logger that writes nothing (default for tests and optional dependencies). */
export const createNullLogger = (): Logger => createLogger({ service: 'null', silent: true });

/** A logger that keeps every JSON line it writes in `lines` (tests assert on them, e.g. that no secret appears). */
export const createCaptureLogger = (service: string, level = 'debug'): { logger: Logger; lines: string[] } => {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { logger: createLogger({ service, level, transports: [new winston.transports.Stream({ stream })] }), lines };
};
