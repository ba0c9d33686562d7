import type { Duplex } from 'node:stream';
import { AppError } from '@pa/kit';
import {
  backend,
  checkStartupParameters,
  FrontendDecoder,
  type AcceptedStartup,
  type CancelRequest,
  type FrontendDecoderLimits,
  type FrontendMessage,
  type StartupMessage,
  type StartupPolicyOptions,
  type TypedFrontendMessage,
} from '@pa/pgwire';

/**
 * The client's side of the startup, answered by the proxy itself:
 *
 *   client                                   proxy
 *     SSLRequest ───────────────────────────▶  'N' (the tunnel is the encrypted hop;
 *                                               bytes pipelined after the request: 08P01)
 *     GSSENCRequest ────────────────────────▶  'N'
 *     CancelRequest ────────────────────────▶  (handled by the cancel path, no answer)
 *     StartupMessage 3.x ───────────────────▶  allowlist (08004 on refusal)
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
 */

/** What the client asked for. */
export type ClientStartup =
  | { readonly kind: 'cancel'; readonly request: CancelRequest; readonly bytesFromClient: number; readonly bytesToClient: number }
  | {
      readonly kind: 'startup';
      readonly message: StartupMessage;
      readonly accepted: AcceptedStartup;
      /** The decoder, now in its typed phase (it may hold a partial frame). */
      readonly decoder: FrontendDecoder;
      /** Typed messages the client pipelined after its StartupMessage (kept for the session). */
      readonly pending: readonly TypedFrontendMessage[];
      readonly bytesFromClient: number;
      readonly bytesToClient: number;
    };

/** Options of {@link readClientStartup}. */
export interface ClientStartupOptions {
  readonly limits?: Partial<FrontendDecoderLimits>;
  readonly startupPolicy?: StartupPolicyOptions;
  /** The whole startup (including SSL/GSS negotiation) must arrive within this. */
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/** Ends a {@link readStartupPhase}: with an error, or with its value. */
export type StartupPhaseFinish<T> = (err: AppError | null, value?: T) => void;

/** Options of {@link readStartupPhase}. */
export interface StartupPhaseOptions {
  /** The phase must end within this; else PG_STARTUP_REFUSED with `lateMessage`. */
  readonly timeoutMs: number;
  readonly lateMessage: string;
  /** The client closing (or failing) first is PG_PROTOCOL_VIOLATION with `closedMessage`. */
  readonly closedMessage: string;
  /** Aborting it ends the phase with PG_SESSION_TERMINATED. */
  readonly signal?: AbortSignal;
}

/**
 * One phase of a client's startup read from `client` (the startup packets, a
 * password message…): `onChunk` sees each read and calls `finish` once it has
 * what it waits for, or an error. `start` may finish before anything is read
 * (with what an earlier phase left over); it returns whether it did. Handles
 * the deadline, the client closing or failing, the abort signal, and leaves
 * the client paused with no listener of ours.
 */
export const readStartupPhase = <T>(
  client: Duplex,
  options: StartupPhaseOptions,
  onChunk: (chunk: Buffer, finish: StartupPhaseFinish<T>) => void,
  start?: (finish: StartupPhaseFinish<T>) => boolean,
): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    let done = false;
    const finish: StartupPhaseFinish<T> = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      client.pause();
      client.off('data', onData);
      client.off('end', onEnd);
      client.off('close', onEnd);
      client.off('error', onEnd);
      if (err) reject(err);
      else resolve(value as T);
    };
    const onData = (chunk: Buffer): void => {
      if (!done) onChunk(chunk, finish);
    };
    const onEnd = (): void => finish(new AppError('PG_PROTOCOL_VIOLATION', { message: options.closedMessage }));
    const onAbort = (): void => finish(new AppError('PG_SESSION_TERMINATED'));
    const timer = setTimeout(() => finish(new AppError('PG_STARTUP_REFUSED', { message: options.lateMessage })), options.timeoutMs);
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    if (start?.(finish) === true) return;
    options.signal?.addEventListener('abort', onAbort, { once: true });
    client.on('data', onData);
    client.on('end', onEnd);
    client.on('close', onEnd);
    client.on('error', onEnd);
    client.resume();
  });

/**
 * Reads the client's startup packets and answers the encryption requests.
 * Resolves with a StartupMessage that passed the allowlist, or a
 * CancelRequest; rejects with an AppError (`PG_PROTOCOL_VIOLATION` 08P01,
 * `PG_STARTUP_REFUSED` 08004) that the handler reports as FATAL. The client
 * is left paused with no listener of ours.
 */
export const readClientStartup = (client: Duplex, options: ClientStartupOptions): Promise<ClientStartup> => {
  const decoder = new FrontendDecoder(options.limits);
  let bytesIn = 0;
  let bytesOut = 0;
  let startup: StartupMessage | null = null;
  let cancel: CancelRequest | null = null;
  let answer: 'ssl' | 'gss' | null = null;
  const pending: TypedFrontendMessage[] = [];
  const onMessage = (m: FrontendMessage): void => {
    switch (m.type) {
      case 'SSLRequest':
        answer = 'ssl';
        return;
      case 'GSSENCRequest':
        answer = 'gss';
        return;
      case 'CancelRequest':
        cancel = m;
        return;
      case 'StartupMessage':
        startup = m;
        return;
      default:
        pending.push(m);
    }
  };
  return readStartupPhase<ClientStartup>(
    client,
    { timeoutMs: options.timeoutMs, lateMessage: 'The startup packet did not arrive in time.', closedMessage: 'The client closed the connection during startup.', signal: options.signal },
    (chunk, finish) => {
      bytesIn += chunk.length;
      const err = decoder.write(chunk, onMessage);
      if (err) return finish(err);
      if (cancel) return finish(null, { kind: 'cancel', request: cancel, bytesFromClient: bytesIn, bytesToClient: bytesOut });
      if (answer) {
        // Answered only once the whole read was checked: a byte pipelined after
        // the request has already failed the decoder (CVE-2021-23214).
        answer = null;
        const no = backend.encryptionResponse(false);
        bytesOut += no.length;
        client.write(no);
        decoder.negotiationAnswered();
      }
      if (startup) {
        const check = checkStartupParameters(startup, options.startupPolicy);
        if (!check.ok) return finish(check.error);
        finish(null, { kind: 'startup', message: startup, accepted: check.value, decoder, pending, bytesFromClient: bytesIn, bytesToClient: bytesOut });
      }
    },
  );
};
