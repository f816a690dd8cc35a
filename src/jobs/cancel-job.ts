import { jobNotCancellable } from '../domain-errors';
import type { Db } from '../db/schema';
import { cancelScrapeJob } from '../db/scrape-jobs';
import { findJobForKey, type JobForOwner } from '../db/statements/find-job-for-key';

/**
 * DELETE /v1/jobs/{id}: a queued job of this key ends `cancelled`. Returns the cancelled job,
 * undefined when this key has no job with that id; throws JOB_NOT_CANCELLABLE (with the job's
 * status) for a job a worker already started or that already ended. The job's pg-boss entry is
 * left in the queue: the claim that fetches it finds the row cancelled and completes it unscraped.
 */
export async function cancelJob(db: Db, id: string, apiKeyId: string): Promise<JobForOwner | undefined> {
  const cancelled = await cancelScrapeJob(db, id, apiKeyId);
  if (cancelled) return cancelled;
  const job = await findJobForKey(db, id, apiKeyId);
  if (!job) return undefined;
  throw jobNotCancellable(job.status);
}
