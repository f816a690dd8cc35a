import type { PgBoss } from 'pg-boss';
import type { ApiKeyIdentity } from '../db/api-keys';
import { jobNotFinished, webhookNotConfigured } from '../domain-errors';
import type { Db, JobStatus } from '../db/schema';
import { jobsWithWebhooks, type JobWebhook } from '../db/webhooks';
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

/** The jobs whose ends are delivered, each with its API key's id. */
export type DeliveredJob = { jobId: string; apiKeyId: string };

/**
 * pg-boss jobs delivering these jobs' ends, each in its key's pg-boss group: the delivery worker
 * caps the deliveries of one group it runs at once (localGroupConcurrency, see webhook-delivery.ts).
 */
export const deliveryJobs = (jobs: readonly DeliveredJob[]) =>
  jobs.map(({ jobId, apiKeyId }) => ({
    data: { jobId } satisfies WebhookJobData,
    group: { id: apiKeyId },
  }));

/** The singleton key of a job's redelivery: one may be pending per job at a time. */
export const redeliveryKey = (jobId: string) => `redeliver:${jobId}`;

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
 * At most one redelivery per job is pending (not yet being sent): asked again meanwhile, that one
 * is made due now rather than a second queued (pg-boss upsert by singleton key). One being sent
 * right now is not pending: the next call queues another.
 */
export async function redeliverWebhook(
  ctx: { store: { db: Db }; boss: PgBoss },
  job: { id: string; status: JobStatus },
): Promise<void> {
  const [withWebhook] = await jobsWithWebhooks(ctx.store.db, [job.id]);
  if (!withWebhook) throw webhookNotConfigured();
  if (!isTerminal(job.status)) throw jobNotFinished(job.status);
  await ctx.boss.upsert(WEBHOOK_QUEUE, { jobId: job.id, redelivery: true } satisfies WebhookJobData, {
    singletonKey: redeliveryKey(job.id),
    group: { id: withWebhook.apiKeyId },
    startAfter: 0,
  });
}
