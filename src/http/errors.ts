import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { DomainError, isDatabaseUnavailable, queueUnavailable, type DomainErrorCode } from '../domain-errors';
import type { Logger } from '../logger';

/** An answer the API gives of its own (a bad request, a missing key), with its status and headers. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** Answered beside `error` and `code`, e.g. the `status` of a job that cannot be cancelled. */
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const invalidRequest = (message: string) => new HttpError(400, 'INVALID_REQUEST', message);
export const unauthorized = (message: string) => new HttpError(401, 'UNAUTHORIZED', message);
export const forbidden = (message: string) => new HttpError(403, 'FORBIDDEN', message);
export const jobNotFound = () =>
  new HttpError(404, 'JOB_NOT_FOUND', 'No job with this id exists for this API key.');
export const batchNotFound = () =>
  new HttpError(404, 'BATCH_NOT_FOUND', 'No batch with this id exists for this API key.');
/** Seconds a client refused a held request waits: streams and waits of the key end meanwhile. */
export const TOO_MANY_STREAMS_RETRY_SECONDS = 5;
export const tooManyStreams = () =>
  new HttpError(
    429,
    'TOO_MANY_STREAMS',
    'This API key (or this server) holds as many event streams and ?wait= polls open as it may; close one or retry after Retry-After.',
    { 'Retry-After': String(TOO_MANY_STREAMS_RETRY_SECONDS) },
  );

/** An address past its failed sign-ins (SignInThrottle), until its window ends. */
export const tooManyFailedSignIns = (retryAfterSeconds: number) =>
  new HttpError(
    429,
    'TOO_MANY_FAILED_SIGN_INS',
    `Too many failed sign-ins from this address; retry in ${retryAfterSeconds} s.`,
    { 'Retry-After': String(retryAfterSeconds) },
  );

/** The HTTP answer to each domain refusal; Retry-After tells a client when trying again can help. */
const DOMAIN_ANSWERS: Record<DomainErrorCode, { status: number; retryAfterSeconds?: number }> = {
  CONCURRENCY_LIMIT: { status: 429, retryAfterSeconds: 1 },
  TOO_MANY_QUEUED_JOBS: { status: 429, retryAfterSeconds: 5 },
  MONTHLY_QUOTA_EXCEEDED: { status: 402 },
  QUEUE_UNAVAILABLE: { status: 503, retryAfterSeconds: 5 },
  IDEMPOTENCY_KEY_REUSED: { status: 409 },
  JOB_NOT_CANCELLABLE: { status: 409 },
  WEBHOOK_NOT_CONFIGURED: { status: 409 },
  JOB_NOT_FINISHED: { status: 409 },
};

function fromDomainError(err: DomainError): HttpError {
  const { status, retryAfterSeconds } = DOMAIN_ANSWERS[err.code];
  const headers: Record<string, string> =
    retryAfterSeconds === undefined ? {} : { 'Retry-After': String(retryAfterSeconds) };
  return new HttpError(status, err.code, err.message, headers, err.fields);
}

/** The one place where errors become HTTP answers: `{ success: false, error, code }`. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  // Four parameters: Express knows an error handler by its arity.
  return (err, req, res, _next) => {
    const answer = toHttpError(err);
    // The request's own logger (http/request-id.ts), so the line carries its requestId.
    const log = req.log ?? logger;
    if (answer.status >= 500 && answer.code !== 'QUEUE_UNAVAILABLE') {
      log.error({ err, method: req.method, path: req.path }, 'request failed');
    } else if (answer.code === 'QUEUE_UNAVAILABLE') {
      log.warn({ err, method: req.method, path: req.path }, 'Postgres unavailable');
    }
    if (res.headersSent) return;
    sendError(res, answer);
  };
}

/** Answers `{ success: false, error, code }` with the error's status and headers. */
export function sendError(res: Response, answer: HttpError): void {
  res
    .status(answer.status)
    .set(answer.headers)
    .json({ success: false, error: answer.message, code: answer.code, ...answer.fields });
}

/** What body-parser's errors carry besides their message. */
type BodyParserFields = { type?: unknown; limit?: unknown; status?: unknown; message?: unknown };

function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof DomainError) return fromDomainError(err);
  const e = (typeof err === 'object' && err !== null ? err : {}) as BodyParserFields;
  if (e.type === 'entity.too.large') {
    return new HttpError(
      413,
      'PAYLOAD_TOO_LARGE',
      `The request body is larger than the ${String(e.limit)}-byte limit.`,
    );
  }
  if (e.type === 'entity.parse.failed')
    return new HttpError(400, 'INVALID_REQUEST', 'The request body is not valid JSON.');
  if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') {
    return new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'The request body must be UTF-8 JSON.');
  }
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    return new HttpError(
      e.status,
      'INVALID_REQUEST',
      typeof e.message === 'string' ? e.message : 'Bad request.',
    );
  }
  if (isDatabaseUnavailable(err)) return fromDomainError(queueUnavailable());
  return new HttpError(500, 'INTERNAL_ERROR', 'An unexpected error occurred; it has been logged.');
}

export const routeNotFound: RequestHandler = (req, res) => {
  res.status(404).json({ success: false, error: `No route ${req.method} ${req.path}.`, code: 'NOT_FOUND' });
};
