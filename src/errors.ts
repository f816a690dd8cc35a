/**
 * Errors are values with an HTTP status and a machine code; src/http/errors.ts maps them to the
 * documented shape `{ success: false, error, code }` in one place.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const invalidRequest = (message: string) => new ApiError(400, 'INVALID_REQUEST', message);
export const unauthorized = (message: string) => new ApiError(401, 'UNAUTHORIZED', message);
export const jobNotFound = () =>
  new ApiError(404, 'JOB_NOT_FOUND', 'No job with this id exists for this API key.');

export const QUEUE_RETRY_AFTER_SECONDS = 5;
export const queueUnavailable = () =>
  new ApiError(
    503,
    'QUEUE_UNAVAILABLE',
    'The job store (Postgres) cannot be reached right now; retry shortly.',
    {
      'Retry-After': String(QUEUE_RETRY_AFTER_SECONDS),
    },
  );

export const concurrencyLimitReached = (limit: number) =>
  new ApiError(
    429,
    'CONCURRENCY_LIMIT',
    `This API key already has ${limit} scrapes in progress (its concurrency limit); retry shortly, or use /v1/scrape/async to queue.`,
    {
      'Retry-After': '1',
    },
  );
export const tooManyQueuedJobs = (max: number) =>
  new ApiError(
    429,
    'TOO_MANY_QUEUED_JOBS',
    `This API key already has ${max} jobs queued (its limit); retry when some have finished.`,
    {
      'Retry-After': '5',
    },
  );
export const monthlyQuotaExceeded = (quota: number) =>
  new ApiError(
    402,
    'MONTHLY_QUOTA_EXCEEDED',
    `This API key has used its monthly quota of ${quota} successful scrapes.`,
  );

/** Codes of a scrape that could not complete; each answers 502 on the sync route. */
export type ScrapeFailureCode =
  | 'TARGET_TIMEOUT'
  | 'TARGET_UNREACHABLE'
  | 'TARGET_TLS_ERROR'
  | 'TARGET_TOO_LARGE'
  | 'TARGET_BLOCKED'
  | 'TOO_MANY_REDIRECTS'
  | 'TARGET_PROTOCOL_ERROR'
  | 'CLIENT_DISCONNECTED';

export class ScrapeFailure extends Error {
  constructor(
    readonly code: ScrapeFailureCode,
    message: string,
  ) {
    super(message);
    this.name = 'ScrapeFailure';
  }
}

// Connection-level failures: the server is down, restarting, refusing or has dropped us.
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);
// SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown, terminate).
const UNAVAILABLE_SQLSTATE = /^(08|57P0[1-3])/;
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection is closed|terminating connection/i;

/** True when an error means "Postgres cannot be reached", which the API answers with 503. */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e: any = err, depth = 0; e && depth < 5; e = e.cause, depth++) {
    if (
      typeof e.code === 'string' &&
      (UNAVAILABLE_NODE_CODES.has(e.code) || UNAVAILABLE_SQLSTATE.test(e.code))
    )
      return true;
    if (typeof e.message === 'string' && UNAVAILABLE_MESSAGES.test(e.message)) return true;
    if (Array.isArray(e.errors) && e.errors.some(isDatabaseUnavailable)) return true;
  }
  return false;
}
