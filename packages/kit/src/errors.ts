import { ERROR_CODES, type ErrorCode, type ErrorCodeSpec } from './error-codes';

/** One problem with one field of an input. */
export interface FieldProblem {
  /** Dotted path of the field (`rules.0.sql.kinds`), empty for the whole input. */
  readonly path: string;
  readonly message: string;
}

export interface AppErrorOptions {
  /** Safe public message; defaults to the code's registered message. */
  message?: string;
  /** Per-field problems; sorted by path when the error is built. */
  details?: FieldProblem[];
  /** Extra safe public data (e.g. retryAfterSeconds). */
  meta?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * The only error type that crosses an edge with its message intact. Anything
 * else is reported to clients as INTERNAL and logged in full.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: readonly FieldProblem[];
  readonly meta: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, options: AppErrorOptions = {}) {
    super(options.message ?? ERROR_CODES[code].message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = [...(options.details ?? [])].sort((a, b) =>
      a.path === b.path ? a.message.localeCompare(b.message) : a.path.localeCompare(b.path),
    );
    this.meta = options.meta ?? {};
  }

  get spec(): ErrorCodeSpec {
    return ERROR_CODES[this.code];
  }
}

export const isAppError = (err: unknown): err is AppError => err instanceof AppError;

/** Converts anything thrown into an AppError, mapping unknowns to INTERNAL (keeping the cause). */
export const toAppError = (err: unknown): AppError =>
  isAppError(err) ? err : new AppError('INTERNAL', { cause: err });
