import { z } from 'zod';

/** Refusals of the job system (src/domain-errors.ts's DomainError); src/http/errors.ts maps each to a status. */
export const DOMAIN_ERROR_CODES = [
  'CONCURRENCY_LIMIT',
  'TOO_MANY_QUEUED_JOBS',
  'MONTHLY_QUOTA_EXCEEDED',
  'QUEUE_UNAVAILABLE',
  'IDEMPOTENCY_KEY_REUSED',
  'JOB_NOT_CANCELLABLE',
  'WEBHOOK_NOT_CONFIGURED',
  'JOB_NOT_FINISHED',
] as const;

/** Every `code` of an error answer `{ success: false, error, code }`. */
export const ERROR_CODES = [
  'INVALID_REQUEST',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'JOB_NOT_FOUND',
  'BATCH_NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'INTERNAL_ERROR',
  'NOT_READY',
  'TOO_MANY_STREAMS',
  'TOO_MANY_REDELIVERIES',
  'TOO_MANY_FAILED_SIGN_INS',
  'TOO_MANY_REQUEST_BYTES',
  ...DOMAIN_ERROR_CODES,
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** What each code means, for the reference (the answers' `error` says it for the case at hand). */
export const ERROR_MEANINGS: Record<ErrorCode, string> = {
  INVALID_REQUEST: 'The body, query or a header is malformed; `error` names each bad field.',
  UNAUTHORIZED: 'X-API-Key is missing, unknown or revoked.',
  FORBIDDEN:
    'The key may not do this (the dashboard wants an admin key), or a form was posted from another site.',
  NOT_FOUND: 'No such route.',
  JOB_NOT_FOUND: 'No job with this id exists for this API key.',
  BATCH_NOT_FOUND: 'No batch with this id exists for this API key.',
  PAYLOAD_TOO_LARGE:
    'The body is over the limit (2 MiB; for a batch 4 KiB a request of OMNISCRAPE_MAX_BATCH, at most 32 MiB), refused from its Content-Length before it is read.',
  UNSUPPORTED_MEDIA_TYPE: 'The body is not UTF-8.',
  INTERNAL_ERROR: 'An unexpected error; it has been logged.',
  NOT_READY: 'Postgres is unreachable or its migrations are pending.',
  TOO_MANY_STREAMS:
    'The key (or the server) holds as many event streams and `?wait=` polls open as it may; retry after Retry-After.',
  TOO_MANY_REDELIVERIES:
    'The key asked for more webhook redeliveries this minute than it may; retry after Retry-After.',
  TOO_MANY_FAILED_SIGN_INS:
    'Too many unknown keys came from this client address lately; retry after Retry-After.',
  TOO_MANY_REQUEST_BYTES:
    "The key's request bodies being read at once are at its limit (or the server's); retry after Retry-After.",
  CONCURRENCY_LIMIT:
    'The key has as many scrapes in progress as its concurrency limit; retry after Retry-After.',
  TOO_MANY_QUEUED_JOBS: 'The key has as many jobs queued as it may; retry after Retry-After.',
  MONTHLY_QUOTA_EXCEEDED: "The key has used its month's quota of successful scrapes.",
  QUEUE_UNAVAILABLE: 'Postgres cannot be reached right now; retry after Retry-After.',
  IDEMPOTENCY_KEY_REUSED: 'This Idempotency-Key came with a different request in the last 24 hours.',
  JOB_NOT_CANCELLABLE: 'Only a queued job can be cancelled; `status` says what it is.',
  WEBHOOK_NOT_CONFIGURED: 'The job has no webhook to redeliver.',
  JOB_NOT_FINISHED: 'The job has not ended yet; `status` says what it is.',
};

/** Codes of a scrape that could not complete: an outcome recorded like a page, not a refusal. */
export const SCRAPE_FAILURE_CODES = [
  'TARGET_TIMEOUT',
  'TARGET_UNREACHABLE',
  'TARGET_TLS_ERROR',
  'TARGET_TOO_LARGE',
  'TARGET_BLOCKED',
  'TOO_MANY_REDIRECTS',
  'TARGET_PROTOCOL_ERROR',
  'CLIENT_DISCONNECTED',
] as const;

/** Every status a job can be in (the check constraint of migration 0006). */
export const JOB_STATUSES = [
  'queued',
  'processing',
  'completed',
  'failed',
  'timed_out',
  'cancelled',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Every status but queued and processing is final (it changes no more), a status added later included. */
export const isTerminal = (status: JobStatus): boolean => status !== 'queued' && status !== 'processing';

/** The final statuses (those isTerminal holds for), for SQL and lists. */
export const TERMINAL_STATUSES: readonly JobStatus[] = JOB_STATUSES.filter(isTerminal);

export const errorBody = z
  .strictObject({
    success: z.literal(false),
    error: z.string().meta({ description: 'What went wrong, for a person.' }),
    code: z.enum(ERROR_CODES).meta({ description: 'What went wrong, for a program.' }),
    status: z
      .enum(JOB_STATUSES)
      .optional()
      .meta({ description: 'The job status, with JOB_NOT_CANCELLABLE and JOB_NOT_FINISHED.' }),
  })
  .meta({
    id: 'Error',
    examples: [{ success: false, error: 'Missing X-API-Key header.', code: 'UNAUTHORIZED' }],
  });
