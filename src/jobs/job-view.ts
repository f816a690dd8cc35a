import type { z } from 'zod';
import { isTerminal } from '../contract/errors';
import type { job } from '../contract/responses';
import { withJsonMember } from '../db/json-text';
import type { JobForOwner } from '../db/statements/find-job-for-key';

/** `data` of GET /v1/jobs/{id} as the contract declares it, its result apart (spliced in as stored JSON). */
export type JobView = Omit<z.input<typeof job>, 'result'>;

const iso = (value: Date | string | null) =>
  (value instanceof Date ? value : new Date(value ?? 0)).toISOString();

/**
 * The body of GET /v1/jobs/{id} as JSON text. A completed job's result is spliced in as the JSON text
 * Postgres stored, so a large result is neither parsed nor serialised again on each poll.
 */
export function jobBody(job: JobForOwner): string {
  return `{"success":true,"data":${jobData(job)}}`;
}

/** The job object alone (`data` of jobBody) as JSON text, on one line: an event stream's data. */
export function jobData(job: JobForOwner): string {
  const data = JSON.stringify(presentJob(job));
  return job.status === 'completed' && job.result_json !== null
    ? withJsonMember(data, 'result', job.result_json)
    : data;
}

export function presentJob(job: JobForOwner): JobView {
  return presentJobState(job, job.result_json !== null);
}

/**
 * A job's public view, its result left out. `resultKept` says whether a completed job's result is
 * still stored: the poll knows it from the result it read, the job list from the expiry time.
 */
export function presentJobState(
  job: Omit<JobForOwner, 'result_json' | 'updated_us'>,
  resultKept: boolean,
): JobView {
  const view: JobView = {
    job_id: job.id,
    status: job.status,
    url: job.url,
    created_at: iso(job.created_at),
    updated_at: iso(job.updated_at),
  };
  if (job.status === 'completed') {
    if (!resultKept) {
      // The history row outlives its result: say so plainly rather than answer an empty result.
      view.code = 'RESULT_EXPIRED';
      view.error = 'The result of this job has expired and was purged; the job history is kept.';
      if (job.result_expires_at) view.result_expired_at = iso(job.result_expires_at);
    }
  } else if (isTerminal(job.status)) {
    view.error = job.error_message ?? 'The scrape could not complete.';
    view.code = job.error_code ?? 'SCRAPE_FAILED';
  }
  return view;
}
