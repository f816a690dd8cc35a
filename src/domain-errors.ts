import type { DOMAIN_ERROR_CODES, SCRAPE_FAILURE_CODES } from './contract/errors';

/**
 * Why the job system refused a request, as a machine code; src/http/errors.ts alone maps each code
 * to its HTTP status and headers, so jobs/ and store/ know nothing of HTTP.
 */
export type DomainErrorCode = (typeof DOMAIN_ERROR_CODES)[number];

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    /** Facts a client acts on, answered beside `error` and `code` (a job's `status`). */
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const queueUnavailable = () =>
  new DomainError(
    'QUEUE_UNAVAILABLE',
    'The job store (Postgres) cannot be reached right now; retry shortly.',
  );
export const concurrencyLimitReached = (limit: number) =>
  new DomainError(
    'CONCURRENCY_LIMIT',
    `This API key already has ${limit} scrapes in progress (its concurrency limit); retry shortly, or use /v1/scrape/async to queue.`,
  );
export const tooManyQueuedJobs = (max: number) =>
  new DomainError(
    'TOO_MANY_QUEUED_JOBS',
    `This API key already has ${max} jobs queued (its limit); retry when some have finished.`,
  );
export const monthlyQuotaExceeded = (quota: number) =>
  new DomainError(
    'MONTHLY_QUOTA_EXCEEDED',
    `This API key has used its monthly quota of ${quota} successful scrapes.`,
  );

export const idempotencyKeyReused = () =>
  new DomainError(
    'IDEMPOTENCY_KEY_REUSED',
    'This Idempotency-Key was used in the last 24 hours with a different request; use a new key for a new request.',
  );

export const jobNotCancellable = (status: string) =>
  new DomainError('JOB_NOT_CANCELLABLE', `This job is ${status}; only a queued job can be cancelled.`, {
    status,
  });

export const webhookNotConfigured = () =>
  new DomainError('WEBHOOK_NOT_CONFIGURED', 'This job has no webhook: there is nothing to redeliver.');

export const jobNotFinished = (status: string) =>
  new DomainError('JOB_NOT_FINISHED', `This job is ${status}; its webhook is sent when it ends.`, { status });

/** Codes of a scrape that could not complete: an outcome recorded like a page, not a refusal. */
export type ScrapeFailureCode = (typeof SCRAPE_FAILURE_CODES)[number];

export class ScrapeFailure extends Error {
  /** Which engine failed (set by PageScraper): the HTTP client, or headless Chromium. */
  engine?: 'http' | 'browser';

  constructor(
    readonly code: ScrapeFailureCode,
    message: string,
  ) {
    super(message);
    this.name = 'ScrapeFailure';
  }
}

/** Any error as the cause walk sees it: Node, pg and undici errors carry their facts as fields. */
export type ErrorFields = { readonly [field: string]: unknown };

/** How deep the cause walk goes; wrappers nest a few levels at most, and a cycle must not loop. */
const MAX_CAUSE_DEPTH = 5;

/**
 * An error and what it wraps, outermost first: each error, then the errors an AggregateError holds
 * (a connect to every address of a host), then its `cause`. Libraries wrap the error that tells
 * what happened (a refused connection, a SQLSTATE) in their own, so classifiers look at them all.
 */
export function* causes(err: unknown, depth = MAX_CAUSE_DEPTH): Generator<ErrorFields> {
  for (let e = err; typeof e === 'object' && e !== null && depth > 0; depth--) {
    const fields = e as ErrorFields;
    yield fields;
    if (Array.isArray(fields.errors)) for (const inner of fields.errors) yield* causes(inner, depth - 1);
    e = fields.cause;
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
  for (const e of causes(err)) {
    if (
      typeof e.code === 'string' &&
      (UNAVAILABLE_NODE_CODES.has(e.code) || UNAVAILABLE_SQLSTATE.test(e.code))
    )
      return true;
    if (typeof e.message === 'string' && UNAVAILABLE_MESSAGES.test(e.message)) return true;
  }
  return false;
}
