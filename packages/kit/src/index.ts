export { ERROR_CODES, errorCodes, type ErrorCode, type ErrorCodeSpec } from './error-codes';
export { AppError, isAppError, toAppError, type AppErrorOptions, type FieldProblem } from './errors';
export { zodProblems } from './zod-problems';
export { parseConfig, readSecret, setPath, mergeDeep, envBool, envPort, envDurationSeconds, type Env } from './config';
export { createLogger, createNullLogger, createCaptureLogger, redact, REDACTED, SECRET_KEYS, type Logger, type LoggerOptions } from './logger';
export { newId, ID_PATTERN } from './ids';
export { stopOnSignals } from './lifecycle';
export { dialableHost } from './net';
export { TlsFileReader, tlsFailureOf, probeTls, TLS_FAILURE_TEXT, type TlsFileRef, type KeyPair, type TlsFailure, type TlsFailureKind, type TlsProbeOptions } from './tls';
