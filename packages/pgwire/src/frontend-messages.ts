/**
 * Messages a PostgreSQL client sends, as decoded by {@link FrontendDecoder}.
 * Every message keeps `raw`: the exact frame bytes (type byte, length word and
 * body) as a view into the input, so the proxy can forward them untouched.
 * Byte fields (`params`, `data`, `body`, `secretKey`) are views too: they stay
 * valid as long as the input chunk is not reused.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

/** Protocol version requested by a StartupMessage. */
export interface ProtocolVersion {
  readonly major: number;
  readonly minor: number;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-STARTUPMESSAGE */
export interface StartupMessage {
  readonly type: 'StartupMessage';
  readonly protocolVersion: ProtocolVersion;
  /** Name/value pairs in the order sent; names are unique (duplicates are a protocol violation). */
  readonly parameters: ReadonlyMap<string, string>;
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SSLREQUEST */
export interface SSLRequest {
  readonly type: 'SSLRequest';
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-GSSENCREQUEST */
export interface GSSENCRequest {
  readonly type: 'GSSENCRequest';
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CANCELREQUEST */
export interface CancelRequest {
  readonly type: 'CancelRequest';
  readonly processId: number;
  /** 4 bytes in protocol 3.0, up to 256 from 3.2. */
  readonly secretKey: Buffer;
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-QUERY */
export interface Query {
  readonly type: 'Query';
  readonly sql: string;
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARSE */
export interface Parse {
  readonly type: 'Parse';
  /** Prepared statement name; empty for the unnamed statement. */
  readonly name: string;
  readonly sql: string;
  /** Parameter type OIDs (0 = unspecified). */
  readonly paramTypes: readonly number[];
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BIND */
export interface Bind {
  readonly type: 'Bind';
  readonly portal: string;
  readonly statement: string;
  /** Parameter format codes as sent (0 text, 1 binary; none = all text, one = applies to all). */
  readonly paramFormats: readonly number[];
  /** Parameter values as views; `null` for SQL NULL. */
  readonly params: readonly (Buffer | null)[];
  readonly resultFormats: readonly number[];
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-EXECUTE */
export interface Execute {
  readonly type: 'Execute';
  readonly portal: string;
  /** Row limit; 0 means no limit. */
  readonly maxRows: number;
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-DESCRIBE */
export interface Describe {
  readonly type: 'Describe';
  /** 'S' for a prepared statement, 'P' for a portal. */
  readonly target: 'S' | 'P';
  readonly name: string;
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CLOSE */
export interface Close {
  readonly type: 'Close';
  readonly target: 'S' | 'P';
  readonly name: string;
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SYNC */
export interface Sync {
  readonly type: 'Sync';
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-FLUSH */
export interface Flush {
  readonly type: 'Flush';
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-TERMINATE */
export interface Terminate {
  readonly type: 'Terminate';
  readonly raw: Buffer;
}

/**
 * Runs a server function by OID with no SQL text: the proxy must deny it
 * unless a policy allows it explicitly.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-FUNCTIONCALL
 */
export interface FunctionCall {
  readonly type: 'FunctionCall';
  readonly functionOid: number;
  readonly argFormats: readonly number[];
  readonly args: readonly (Buffer | null)[];
  readonly resultFormat: number;
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COPYDATA */
export interface CopyData {
  readonly type: 'CopyData';
  readonly data: Buffer;
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COPYDONE */
export interface CopyDone {
  readonly type: 'CopyDone';
  readonly raw: Buffer;
}

/** @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COPYFAIL */
export interface CopyFail {
  readonly type: 'CopyFail';
  readonly message: string;
  readonly raw: Buffer;
}

/**
 * The 'p' message. Its layout depends on the authentication exchange in
 * progress (PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse),
 * which only the connection's state knows: read `body` with
 * {@link readPasswordMessage}, {@link readSASLInitialResponse} or
 * {@link readSASLResponse}.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PASSWORDMESSAGE
 */
export interface AuthenticationResponse {
  readonly type: 'AuthenticationResponse';
  readonly body: Buffer;
  readonly raw: Buffer;
}

/**
 * Not a protocol message: a Query, Parse or Bind longer than the decoder's cap. Its
 * bytes were skipped without being buffered (only its length was read), so
 * the session can refuse that one statement in the protocol's own way
 * (ErrorResponse 54000) and go on, instead of ending the connection.
 */
export interface OversizedStatement {
  readonly type: 'OversizedStatement';
  /** Which message it was: a simple Query, or a Parse or Bind (its parameters) of the extended protocol. */
  readonly messageType: 'Query' | 'Parse' | 'Bind';
  /** Its length word (bytes after the type byte). */
  readonly length: number;
  /** Always empty: nothing of it was kept. */
  readonly raw: Buffer;
}

/** Messages that can arrive before the StartupMessage (untyped, length first). */
export type StartupPhaseMessage = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;

/** Messages that can arrive after the StartupMessage (type byte, then length). */
export type TypedFrontendMessage =
  | Query
  | Parse
  | Bind
  | Execute
  | Describe
  | Close
  | Sync
  | Flush
  | Terminate
  | FunctionCall
  | CopyData
  | CopyDone
  | CopyFail
  | AuthenticationResponse
  | OversizedStatement;

/** Any message a client can send. */
export type FrontendMessage = StartupPhaseMessage | TypedFrontendMessage;
