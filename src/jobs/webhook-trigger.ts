import type { PgBoss } from 'pg-boss';
import type { ApiKeyIdentity } from '../store/api-keys';
import { jobNotFinished, webhookNotConfigured } from '../errors';
import type { Db, JobStatus } from '../store/schema';
import { jobsWithWebhooks, type JobWebhook } from '../store/webhooks';
import { isTerminal } from '../contract/errors';
import { WEBHOOK_QUEUE } from './queue';

/** A delivery job's data (queue WEBHOOK_QUEUE). */
export interface WebhookJobData {
  jobId: string;
  /** Sent on request (POST …/webhooks/redeliver): delivered even after a successful delivery. */
  redelivery?: true;
}

/** The webhook a submission applies: its own, else its key's default (which has no secret). */
export function effectiveWebhook(
  key: Pick<ApiKeyIdentity, 'webhook_url'>,
  webhook: JobWebhook | undefined,
): JobWebhook | undefined {
  return webhook ?? (key.webhook_url ? { url: key.webhook_url } : undefined);
}

/** pg-boss jobs delivering these jobs' ends. */
export const deliveryJobs = (jobIds: readonly string[], redelivery = false) =>
  jobIds.map((jobId) => ({
    data: { jobId, ...(redelivery && { redelivery: true }) } satisfies WebhookJobData,
  }));

/**
 * Enqueues deliveries for jobs that ended outside the settle transaction (a cancel, a lost job):
 * sent after their status change committed, not with it. These paths are rare, and a crash between
 * the two loses only that notice (the job's status is still right, and a redelivery sends it).
 */
export async function enqueueWebhooksOf(
  ctx: { store: { db: Db }; boss: PgBoss },
  jobIds: readonly string[],
): Promise<void> {
  const withWebhooks = await jobsWithWebhooks(ctx.store.db, jobIds);
  if (withWebhooks.length > 0) await ctx.boss.insert(WEBHOOK_QUEUE, deliveryJobs(withWebhooks));
}

/**
 * POST /v1/jobs/{id}/webhooks/redeliver: sends an ended job's webhook again, whatever was delivered
 * before. Throws WEBHOOK_NOT_CONFIGURED for a job without one, JOB_NOT_FINISHED before its end.
 */
export async function redeliverWebhook(
  ctx: { store: { db: Db }; boss: PgBoss },
  job: { id: string; status: JobStatus },
): Promise<void> {
  if ((await jobsWithWebhooks(ctx.store.db, [job.id])).length === 0) throw webhookNotConfigured();
  if (!isTerminal(job.status)) throw jobNotFinished(job.status);
  await ctx.boss.insert(WEBHOOK_QUEUE, deliveryJobs([job.id], true));
}
