import { type AppError } from '@pa/kit';
import { type BackendMessage } from 'pg-protocol/dist/messages';
import { Parser } from 'pg-protocol/dist/parser';
import { BackendFramer } from './backend-framer';
import { BackendCode } from './protocol-codes';
import { backendProtocolViolation } from './protocol-error';

/** Options of {@link CappedBackendParser}. */
export interface CappedBackendParserOptions {
  /** Cap on any message's length word (every message is buffered whole). Default 1 MiB. */
  readonly maxMessageLength?: number;
}

/** Types pg-protocol's Parser understands; others (NegotiateProtocolVersion, FunctionCallResponse, CopyBothResponse) are refused here. */
const PARSEABLE = new Set<number>(
  Object.values(BackendCode).filter(
    (c) => c !== BackendCode.NegotiateProtocolVersion && c !== BackendCode.FunctionCallResponse && c !== BackendCode.CopyBothResponse,
  ),
);

/**
 * pg-protocol's backend Parser behind a length cap. pg-protocol trusts length
 * words (a hostile or broken server could make it buffer without bound);
 * here every frame is first delimited and capped by {@link BackendFramer}, and
 * only complete, capped frames reach the Parser. Parser errors on malformed
 * bodies become `PG_BACKEND_PROTOCOL_VIOLATION` instead of exceptions.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
export class CappedBackendParser {
  private readonly framer: BackendFramer;
  private readonly parser = new Parser();
  private failure: AppError | null = null;

  constructor(options: CappedBackendParserOptions = {}) {
    const cap = options.maxMessageLength ?? 1024 * 1024;
    this.framer = new BackendFramer({ inspect: 'all', maxInspectedLength: cap, maxMessageLength: cap });
  }

  /** Feeds bytes; calls `onMessage` for each parsed message; returns null or the violation. */
  parse(chunk: Buffer, onMessage: (message: BackendMessage) => void): AppError | null {
    if (this.failure) return this.failure;
    const framed = this.framer.push(chunk, (frame) => {
      if (this.failure || !frame.raw) return;
      if (!PARSEABLE.has(frame.type)) {
        this.failure = backendProtocolViolation('Backend message type not supported by the parser.');
        return;
      }
      let message: BackendMessage | undefined;
      try {
        this.parser.parse(frame.raw, (m) => {
          message = m;
        });
      } catch (err) {
        this.failure = backendProtocolViolation('Malformed backend message.', err);
        return;
      }
      if (!message) {
        this.failure = backendProtocolViolation('Malformed backend message.');
        return;
      }
      onMessage(message);
    });
    if (framed) this.failure = framed;
    return this.failure;
  }
}
