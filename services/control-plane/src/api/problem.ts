import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, toAppError, type Logger } from '@pa/kit';

const TYPE_BASE = 'https://port-authorizing.dev/errors/';

/** Maps body-parser failures to our codes. */
const fromExpressError = (err: unknown): AppError | null => {
  const type = typeof err === 'object' && err !== null ? (err as { type?: unknown }).type : undefined;
  if (type === 'entity.parse.failed') return new AppError('MALFORMED_JSON', { cause: err });
  if (type === 'entity.too.large') return new AppError('PAYLOAD_TOO_LARGE', { cause: err });
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return new AppError('UNSUPPORTED_MEDIA_TYPE', { cause: err });
  return null;
};

/**
 * The one error edge of the REST API: every error becomes an RFC 9457 problem
 * document with a stable `code`. Anything that is not an AppError is reported
 * as INTERNAL and logged in full; its text never reaches the client.
 */
export const problemHandler = (logger: Logger): ErrorRequestHandler => (err, req, res, _next) => {
  const appError = fromExpressError(err) ?? toAppError(err);
  const spec = appError.spec;
  const requestId = res.getHeader('x-request-id') as string | undefined;
  if (appError.code === 'INTERNAL') logger.error('Request failed.', { err, requestId, method: req.method, path: req.path });
  else logger.debug('Request refused.', { code: appError.code, requestId });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const retryAfter = appError.meta.retryAfterSeconds;
  if (typeof retryAfter === 'number') res.setHeader('Retry-After', String(Math.max(1, retryAfter)));
  if (spec.http === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="port-authorizing"');
  res
    .status(spec.http)
    .type('application/problem+json')
    .send(
      JSON.stringify({
        type: TYPE_BASE + appError.code.toLowerCase().replace(/_/g, '-'),
        title: spec.message,
        status: spec.http,
        detail: appError.message,
        code: appError.code,
        instance: req.originalUrl,
        ...(requestId ? { requestId } : {}),
        ...(appError.details.length ? { errors: appError.details } : {}),
        ...(typeof appError.meta.currentVersion === 'number' ? { currentVersion: appError.meta.currentVersion } : {}),
      }),
    );
};

/** 404 for unknown API paths, as a problem document. */
export const notFound: RequestHandler = (_req, _res, next) => next(new AppError('ROUTE_NOT_FOUND'));
