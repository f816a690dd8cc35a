import type { z } from 'zod';
import type { ErrorCode, errorBody } from '../contract/errors';

export type ErrorBody = z.infer<typeof errorBody>;

/** A refusal of the API (its `{ success: false, error, code }`), or a client-side failure (status 0). */
export class OmniscrapeError extends Error {
  override readonly name = 'OmniscrapeError';

  constructor(
    readonly status: number,
    readonly code: ErrorCode | 'NETWORK_ERROR' | 'UNEXPECTED_ANSWER' | 'WAIT_TIMEOUT',
    message: string,
    /** The job's status, with JOB_NOT_CANCELLABLE and JOB_NOT_FINISHED. */
    readonly jobStatus?: ErrorBody['status'],
  ) {
    super(message);
  }
}
