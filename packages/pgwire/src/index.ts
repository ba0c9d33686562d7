/**
 * @pa/pgwire — the PostgreSQL wire protocol for the proxy: strict frontend
 * framing, startup policy, message builders for both directions, capped
 * backend framing and parsing, and the backend connector. See README.md.
 */
export * from './protocol-codes';
export type * from './frontend-messages';
export { FrontendDecoder, DEFAULT_FRONTEND_LIMITS, type FrontendDecoderLimits, type FrontendPhase, type FrontendMessageSink } from './frontend-decoder';
export { readPasswordMessage, readSASLInitialResponse, readSASLResponse, type ReadResult, type SASLInitialResponseBody } from './auth-responses';
export {
  checkStartupParameters,
  checkBackendParameter,
  protocolNegotiation,
  isUtf8EncodingName,
  DEFAULT_STARTUP_SETTINGS,
  type ParameterValidator,
  type StartupPolicyOptions,
  type AcceptedStartup,
  type StartupCheck,
} from './startup';
export * as backend from './backend-builders';
export * as frontend from './frontend-builders';
export type { ErrorFields, ErrorSeverity, NoticeSeverity, ColumnDescription } from './backend-builders';
export {
  BackendFramer,
  DEFAULT_INSPECTED_TYPES,
  readReadyForQuery,
  readCommandComplete,
  readParameterStatus,
  readBackendKeyData,
  readErrorResponse,
  readAuthentication,
  readNegotiateProtocolVersion,
  type BackendFramerOptions,
  type BackendFrame,
  type BackendFrameSink,
  type BackendRead,
  type BackendKey,
  type BackendNotice,
  type AuthenticationRequest,
} from './backend-framer';
export { CappedBackendParser, type CappedBackendParserOptions } from './capped-backend-parser';
export { protocolViolation } from './protocol-error';
export {
  connectBackend,
  type ConnectBackendOptions,
  type BackendConnection,
  type BackendTlsOptions,
  type BackendAuthMethod,
} from './connect-backend';
export { sendCancel, type SendCancelOptions } from './cancel';
export { InMemoryCancelKeyStore, type CancelKeyStore, type CancelTarget, type InMemoryCancelKeyStoreOptions } from './cancel-keys';
export { ScramClient, ScramError, SCRAM_SHA_256, saslPrep, md5PasswordResponse, type ScramClientOptions } from './scram';
