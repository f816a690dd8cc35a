import type { ServiceContext } from '../context';
import { jobNotCancellable } from '../domain-errors';
import { cancelBatchJobs } from '../db/batches';
import { cancelScrapeJob } from '../db/scrape-jobs';
import { findJobForKey, type JobForOwner } from '../db/statements/find-job-for-key';
import { enqueueWebhooksOf } from './webhook-trigger';

type CancelContext = Pick<ServiceContext, 'store' | 'boss' | 'statusNotices' | 'metrics'>;

/**
 * DELETE /v1/jobs/{id}: a queued job of this key ends `cancelled`. Returns the cancelled job,
 * undefined when this key has no job with that id; throws JOB_NOT_CANCELLABLE (with the job's
 * status) for a job a worker already started or that already ended. The job's pg-boss entry is
 * left in the queue: the claim that fetches it finds the row cancelled and completes it unscraped.
 */
export async function cancelJob(
  ctx: CancelContext,
  id: string,
  apiKeyId: string,
): Promise<JobForOwner | undefined> {
  const cancelled = await cancelScrapeJob(ctx.store.db, id, apiKeyId);
  if (cancelled) {
    await announceCancelled(ctx, [cancelled.id]);
    return cancelled;
  }
  const job = await findJobForKey(ctx.store.db, id, apiKeyId);
  if (!job) return undefined;
  throw jobNotCancellable(job.status);
}

/**
 * DELETE /v1/batches/{id}: the batch's queued jobs (of this key) end `cancelled`; those already
 * started or ended go on as they are. Returns the ids of the jobs it cancelled.
 */
export async function cancelBatch(ctx: CancelContext, batchId: string, apiKeyId: string): Promise<string[]> {
  const cancelled = await cancelBatchJobs(ctx.store.db, batchId, apiKeyId);
  await announceCancelled(ctx, cancelled);
  return cancelled;
}

/**
 * What a cancel sets off once it committed: waiting requests and streams hear the jobs ended, the
 * jobs-ended metric counts them, and their webhooks (if any) are queued.
 */
async function announceCancelled(ctx: CancelContext, jobIds: string[]): Promise<void> {
  ctx.statusNotices.announce('ended', jobIds);
  ctx.metrics.jobsEnded({ kind: 'async', status: 'cancelled', errorCode: 'CANCELLED' }, jobIds.length);
  await enqueueWebhooksOf(ctx, jobIds);
}
