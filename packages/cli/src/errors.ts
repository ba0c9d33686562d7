/**
 * The CLI's error edge: every failure becomes a {@link CliError} with a message
 * that says what to do next and one of the documented exit codes. Commands
 * throw; `runCli` prints `pa: <message>` to stderr and exits with the code.
 */

/** Exit codes of `pa` (documented in the package README). */
export const EXIT = {
  /** Success. */
  OK: 0,
  /** Any other error: bad usage, invalid input, server error. */
  ERROR: 1,
  /** Not logged in, or the session expired: run `pa login`. */
  NEEDS_LOGIN: 2,
  /** Permission denied, or access revoked while connected. */
  PERMISSION_DENIED: 3,
  /** The named user, role, connection, policy or grant does not exist. */
  NOT_FOUND: 4,
  /** The control plane, its grant service or every data-plane node is unreachable. */
  UNREACHABLE: 5,
  /** Interrupted at a prompt (Ctrl-C). */
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error meant for the person at the terminal: a message and an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.ERROR,
    options: { cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'CliError';
  }
}

/** A usage error (unknown flag, missing argument), with a pointer to the help. */
export class UsageError extends CliError {
  constructor(
    message: string,
    readonly commandPath: string,
  ) {
    super(`${message}\nSee \`pa ${commandPath ? `${commandPath} ` : ''}--help\`.`, EXIT.ERROR);
    this.name = 'UsageError';
  }
}

/** Ends a command with an exit code after it has already printed what it had to say. */
export class SilentExit extends CliError {
  constructor(exitCode: ExitCode) {
    super('', exitCode);
    this.name = 'SilentExit';
  }
}

/** A problem document (RFC 9457) answered by the REST API. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly fieldErrors: readonly { path: string; message: string }[] = [],
  ) {
    super(`${detail} (${code})`);
    this.name = 'ApiError';
  }
}

/** A failed gRPC call, with the AppError code from the `pa-error-code` metadata. */
export class GrpcCallError extends Error {
  constructor(
    /** gRPC status code (numeric). */
    readonly grpcCode: number,
    /** The stable error code, or `UNKNOWN` when the server sent none. */
    readonly code: string,
    readonly detail: string,
  ) {
    super(`${detail} (${code})`);
    this.name = 'GrpcCallError';
  }
}

const LOGIN_CODES = new Set([
  'AUTH_REQUIRED',
  'AUTH_TOKEN_INVALID',
  'AUTH_TOKEN_EXPIRED',
  'AUTH_REFRESH_INVALID',
  'AUTH_REFRESH_REUSED',
  'AUTH_SESSION_REVOKED',
]);

/** The exit code for an error code / HTTP status answered by the control plane. */
export const exitCodeFor = (code: string, httpStatus: number): ExitCode => {
  if (LOGIN_CODES.has(code)) return EXIT.NEEDS_LOGIN;
  if (code === 'PERMISSION_DENIED' || code === 'POLICY_DENIED' || code === 'AUTH_USER_DISABLED' || httpStatus === 403) return EXIT.PERMISSION_DENIED;
  if (code.endsWith('_NOT_FOUND') || httpStatus === 404) return EXIT.NOT_FOUND;
  if (httpStatus === 401) return EXIT.NEEDS_LOGIN;
  if (httpStatus === 502 || httpStatus === 503 || httpStatus === 504) return EXIT.UNREACHABLE;
  return EXIT.ERROR;
};

/** Turns an {@link ApiError} into what the user reads, with a hint where one helps. */
export const cliErrorFromApi = (err: ApiError, hint?: string): CliError => {
  const exitCode = exitCodeFor(err.code, err.status);
  const lines = [err.detail];
  for (const f of err.fieldErrors) lines.push(`  ${f.path || '(input)'}: ${f.message}`);
  if (exitCode === EXIT.NEEDS_LOGIN) lines[0] = `${err.detail}: run \`pa login\``;
  else if (exitCode === EXIT.PERMISSION_DENIED) lines[0] = `permission denied: ${err.detail}`;
  if (hint) lines.push(hint);
  return new CliError(lines.join('\n'), exitCode, { cause: err });
};

/** The message and exit code to report for anything thrown. */
export const describeFailure = (err: unknown): { message: string; exitCode: ExitCode } => {
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof ApiError) {
    const e = cliErrorFromApi(err);
    return { message: e.message, exitCode: e.exitCode };
  }
  if (err instanceof GrpcCallError) return { message: `${err.detail} (${err.code})`, exitCode: exitCodeFor(err.code, 0) };
  const message = err instanceof Error ? err.message : String(err);
  return { message: `unexpected error: ${message}`, exitCode: EXIT.ERROR };
};
