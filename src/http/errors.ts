import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ApiError, isDatabaseUnavailable, queueUnavailable } from '../errors';
import type { Logger } from '../logger';

/** The one place where errors become HTTP answers: `{ success: false, error, code }`. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500 && apiError.code !== 'QUEUE_UNAVAILABLE') {
      logger.error({ err, method: req.method, path: req.path }, 'request failed');
    } else if (apiError.code === 'QUEUE_UNAVAILABLE') {
      logger.warn({ err, method: req.method, path: req.path }, 'Postgres unavailable');
    }
    if (res.headersSent) return;
    res
      .status(apiError.status)
      .set(apiError.headers)
      .json({ success: false, error: apiError.message, code: apiError.code });
  };
}

function toApiError(err: any): ApiError {
  if (err instanceof ApiError) return err;
  // body-parser's errors carry a `type` and a client status.
  if (err?.type === 'entity.too.large') {
    return new ApiError(
      413,
      'PAYLOAD_TOO_LARGE',
      `The request body is larger than the ${err.limit}-byte limit.`,
    );
  }
  if (err?.type === 'entity.parse.failed')
    return new ApiError(400, 'INVALID_REQUEST', 'The request body is not valid JSON.');
  if (err?.type === 'encoding.unsupported' || err?.type === 'charset.unsupported') {
    return new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'The request body must be UTF-8 JSON.');
  }
  if (typeof err?.status === 'number' && err.status >= 400 && err.status < 500) {
    return new ApiError(err.status, 'INVALID_REQUEST', String(err.message ?? 'Bad request.'));
  }
  if (isDatabaseUnavailable(err)) return queueUnavailable();
  return new ApiError(500, 'INTERNAL_ERROR', 'An unexpected error occurred; it has been logged.');
}

export const routeNotFound: RequestHandler = (req, res) => {
  res.status(404).json({ success: false, error: `No route ${req.method} ${req.path}.`, code: 'NOT_FOUND' });
};
