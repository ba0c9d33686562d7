import { AppError } from '@pa/kit';

/**
 * A frontend protocol violation (SQLSTATE 08P01). The message is safe to show
 * to the client: it names the problem, never echoes client bytes.
 */
export const protocolViolation = (message: string, meta?: Record<string, unknown>): AppError =>
  new AppError('PG_PROTOCOL_VIOLATION', { message, ...(meta ? { meta } : {}) });

/** A backend (server-side) protocol violation, seen by the proxy's client half. */
export const backendProtocolViolation = (message: string, cause?: unknown): AppError =>
  new AppError('PG_BACKEND_PROTOCOL_VIOLATION', { message, ...(cause !== undefined ? { cause } : {}) });
