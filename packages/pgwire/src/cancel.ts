import { AppError } from '@pa/kit';
import { type BackendTlsOptions, openBackendSocket } from './connect-backend';
import { cancelRequest } from './frontend-builders';

/** Options of {@link sendCancel}. */
export interface SendCancelOptions {
  readonly host: string;
  readonly port: number;
  /** TLS as for the session's own connection (PostgreSQL accepts CancelRequest over TLS). Default disabled. */
  readonly tls?: BackendTlsOptions;
  /** The backend's key, from {@link BackendConnection.backendKey}. */
  readonly processId: number;
  readonly secretKey: Buffer;
  /** Deadline for connecting and sending. Default 5 s. */
  readonly timeoutMs?: number;
}

/**
 * Asks a backend to cancel the query running in another session: opens a new
 * connection, sends a CancelRequest and waits for the server to close it
 * (the server never answers). Resolves once the request was delivered; whether
 * a query was cancelled shows only on the session itself (SQLSTATE 57014).
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 */
export const sendCancel = async (options: SendCancelOptions): Promise<void> => {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 5000);
  try {
    const socket = await openBackendSocket(options.host, options.port, options.tls ?? { mode: 'disable' }, controller.signal);
    await new Promise<void>((resolve, reject) => {
      const finish = (err: AppError | null): void => {
        controller.signal.removeEventListener('abort', onAbort);
        socket.destroy();
        if (err) reject(err);
        else resolve();
      };
      const onAbort = (): void => finish(new AppError('PG_BACKEND_TIMEOUT'));
      controller.signal.addEventListener('abort', onAbort, { once: true });
      socket.on('error', () => finish(null));
      socket.on('close', () => finish(null));
      socket.on('data', () => undefined);
      socket.resume();
      socket.end(cancelRequest(options.processId, options.secretKey));
    });
  } finally {
    clearTimeout(timer);
  }
};
