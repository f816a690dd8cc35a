import type { JobForOwner } from '../db/statements/find-job-for-key';
import { jobBody, presentJob } from './job-view';

/**
 * A delivery's body: the body of GET /v1/jobs/{id}, unless that is longer than `maxBytes` (a large
 * result); then the job without its `result`, with `"result_omitted": true` and `"fetch"`, the path
 * to GET with the key to read it. A receiver answering 500 to a 10 MB result is then sent a few
 * hundred bytes each time, not 10 MB.
 */
export function webhookBody(job: JobForOwner, maxBytes: number): string {
  const full = jobBody(job);
  if (Buffer.byteLength(full) <= maxBytes) return full;
  const data = { ...presentJob(job), result_omitted: true, fetch: `/v1/jobs/${job.id}` };
  return JSON.stringify({ success: true, data });
}
