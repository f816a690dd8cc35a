import { randomUUID } from 'node:crypto';
import type { ServiceContext } from '../context';
import type { ScrapeRequest } from '../scraper/scrape-request';
import type { ApiKeyIdentity } from '../db/api-keys';
import { batchJobIds } from '../db/batches';
import type { JobWebhook } from '../db/webhooks';
import { requestColumns } from './history-row';
import { idempotencyOf, submitOnce } from './idempotency';
import { checkMonthlyQuota, groupOf, limitsOf } from './key-limits';
import { effectiveWebhook } from './webhook-trigger';
import type { QueuedSubmission } from './submit-batcher';

/** A validated batch: its requests, and each item's webhook (its own, else the batch's). */
export interface BatchSubmission {
  requests: readonly ScrapeRequest[];
  webhooks: readonly (JobWebhook | undefined)[];
}

/** An accepted batch; `replayed` when an idempotency key answered with its earlier batch. */
export interface SubmittedBatch {
  batchId: string;
  jobIds: string[];
  replayed: boolean;
}

/**
 * Accepts a batch of async scrapes as a whole or not at all: the key's quota is checked once, and
 * the whole batch must fit under its queued-jobs cap. Its jobs take the key's next places in the
 * fairness rounds in request order (a round of the key's concurrency at a time), so a large batch
 * waits behind other keys' jobs round by round rather than in front of them. Everything (the batch,
 * the history rows, the pg-boss jobs) is committed before this resolves.
 */
export async function submitScrapeBatch(
  ctx: Pick<ServiceContext, 'store' | 'config' | 'queueCaps' | 'rounds' | 'submissions' | 'metrics'>,
  key: ApiKeyIdentity,
  { requests, webhooks }: BatchSubmission,
  idempotencyKey?: string,
  /** The id of the request submitting it (X-Request-Id), recorded in each of its jobs' rows. */
  requestId?: string,
): Promise<SubmittedBatch> {
  const named = webhooks.some((w) => w !== undefined);
  const idempotency =
    idempotencyKey === undefined
      ? undefined
      : idempotencyOf(idempotencyKey, { batch: requests, ...(named && { webhooks }) });
  return submitOnce<SubmittedBatch>(
    ctx.store.db,
    key.id,
    idempotency,
    async (earlier) =>
      earlier.batchId === undefined
        ? undefined
        : {
            batchId: earlier.batchId,
            jobIds: await batchJobIds(ctx.store.db, earlier.batchId),
            replayed: true,
          },
    async () => {
      const limits = limitsOf(key, ctx.config);
      await checkMonthlyQuota(ctx.store.db, key, limits);
      await ctx.queueCaps.check(ctx.store.db, key, limits, requests.length);
      const priorities = await ctx.rounds.prioritiesOf(key.id, limits.concurrency, requests.length);
      const group = groupOf(key, limits);
      const createdAt = new Date();
      const submissions = requests.map((request, i): QueuedSubmission => {
        const jobId = randomUUID();
        const priority = priorities[i]!;
        const webhook = effectiveWebhook(key, webhooks[i]);
        return {
          row: { ...requestColumns(jobId, key.id, request), created_at: createdAt },
          data: { jobId, request, priority, ...(webhook && { webhook: true }) },
          webhook,
          group,
          priority,
        };
      });
      const batchId = randomUUID();
      await ctx.submissions.submitBatch(
        { id: batchId, apiKeyId: key.id, requestId: requestId ?? null },
        submissions,
        idempotency && { apiKeyId: key.id, key: idempotency.key, requestHash: idempotency.hash, batchId },
      );
      ctx.metrics.jobsSubmitted('async', submissions.length);
      return { batchId, jobIds: submissions.map((s) => s.data.jobId), replayed: false };
    },
  );
}
