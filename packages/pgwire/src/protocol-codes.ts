/**
 * Wire constants of the PostgreSQL frontend/backend protocol, version 3.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 * @see https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
 */

/** Protocol major version spoken by this package (3, as since PostgreSQL 7.4). */
export const PROTOCOL_MAJOR = 3;

/** Highest protocol minor version this package understands (3.0). */
export const PROTOCOL_LATEST_MINOR = 0;

/** Request code of an SSLRequest: 1234 in the high 16 bits, 5679 in the low 16 bits. */
export const SSL_REQUEST_CODE = 80877103;

/** Request code of a GSSENCRequest (1234.5680). */
export const GSSENC_REQUEST_CODE = 80877104;

/** Request code of a CancelRequest (1234.5678). */
export const CANCEL_REQUEST_CODE = 80877102;

/**
 * PostgreSQL's own cap on a startup packet (`MAX_STARTUP_PACKET_LENGTH` in
 * `src/include/libpq/pqcomm.h`): 10000 bytes, length word included.
 */
export const MAX_STARTUP_PACKET_LENGTH = 10000;

/**
 * Bounds of a cancel key (BackendKeyData / CancelRequest secret): 4 bytes in
 * protocol 3.0, 4 to 256 bytes from protocol 3.2 on.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BACKENDKEYDATA
 */
export const MIN_CANCEL_KEY_LENGTH = 4;
/** See {@link MIN_CANCEL_KEY_LENGTH}. */
export const MAX_CANCEL_KEY_LENGTH = 256;

/**
 * Type bytes of the messages a client sends after startup.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
export const FrontendCode = {
  Bind: 0x42, // B
  Close: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyFail: 0x66, // f
  Describe: 0x44, // D
  Execute: 0x45, // E
  Flush: 0x48, // H
  FunctionCall: 0x46, // F
  Parse: 0x50, // P
  Password: 0x70, // p (PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse)
  Query: 0x51, // Q
  Sync: 0x53, // S
  Terminate: 0x58, // X
} as const;

/**
 * Type bytes of the messages a server sends.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
export const BackendCode = {
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  CommandComplete: 0x43, // C
  CopyBothResponse: 0x57, // W
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  DataRow: 0x44, // D
  EmptyQueryResponse: 0x49, // I
  ErrorResponse: 0x45, // E
  FunctionCallResponse: 0x56, // V
  NegotiateProtocolVersion: 0x76, // v
  NoData: 0x6e, // n
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  ParameterDescription: 0x74, // t
  ParameterStatus: 0x53, // S
  ParseComplete: 0x31, // 1
  PortalSuspended: 0x73, // s
  ReadyForQuery: 0x5a, // Z
  RowDescription: 0x54, // T
} as const;

/**
 * Sub-codes of the Authentication ('R') message.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONOK
 */
export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** Transaction status carried by ReadyForQuery: idle, in a transaction block, in a failed one. */
export type TransactionStatus = 'I' | 'T' | 'E';
