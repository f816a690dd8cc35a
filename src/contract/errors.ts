import { z } from 'zod';

/** Refusals of the job system (src/errors.ts's DomainError); src/http/errors.ts maps each to a status. */
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
  ...DOMAIN_ERROR_CODES,
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

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
