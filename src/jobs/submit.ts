import { randomUUID } from 'node:crypto';
import type { ServiceContext } from '../context';
import type { ScrapeRequest } from '../scraper/scrape-request';
import type { ApiKeyIdentity } from '../db/api-keys';
import type { JobStatus } from '../db/schema';
import type { JobWebhook } from '../db/webhooks';
import { requestColumns } from './history-row';
import { idempotencyOf, submitOnce } from './idempotency';
import { checkMonthlyQuota, groupOf, limitsOf } from './key-limits';
import { effectiveWebhook } from './webhook-trigger';

type SubmitContext = Pick<
  ServiceContext,
  'store' | 'config' | 'queueCaps' | 'rounds' | 'submissions' | 'metrics'
>;

/** An accepted submission; `replayed` when an idempotency key answered with its earlier job. */
export type Submitted =
  { jobId: string; status: 'queued'; replayed: false } | { jobId: string; status: JobStatus; replayed: true };

/**
 * Accepts an async scrape after the key's quota and queue cap checks. The history row and the
 * pg-boss job are written in one transaction (shared with concurrent submissions, see
 * SubmitBatcher) before this resolves, so a 202 means both exist and survive a crash. Both share
 * one id; the pg-boss job is in the key's group (its concurrency limit), and its priority puts it
 * in its key's round (KeyRounds).
 *
 * With an idempotency key it runs at most once per key (submitOnce).
 */
export async function submitScrapeJob(
  ctx: SubmitContext,
  key: ApiKeyIdentity,
  {
    request,
    webhook,
    requestId,
  }: {
    request: ScrapeRequest;
    webhook?: JobWebhook | undefined;
    /** The id of the request submitting it (X-Request-Id), recorded in its history row. */
    requestId?: string;
  },
  idempotencyKey?: string,
): Promise<Submitted> {
  const idempotency =
    idempotencyKey === undefined
      ? undefined
      : idempotencyOf(idempotencyKey, { job: request, ...(webhook && { webhook }) });
  return submitOnce<Submitted>(
    ctx.store.db,
    key.id,
    idempotency,
    // A batch's hash never equals a job's (the route is part of it): earlierSubmission refused it.
    (earlier) =>
      earlier.jobId === undefined
        ? undefined
        : { jobId: earlier.jobId, status: earlier.status, replayed: true },
    async () => {
      const limits = limitsOf(key, ctx.config);
      await checkMonthlyQuota(ctx.store.db, key, limits);
      await ctx.queueCaps.check(ctx.store.db, key, limits);
      const priority = await ctx.rounds.priorityOf(key.id, limits.concurrency);
      const jobId = randomUUID();
      const applied = effectiveWebhook(key, webhook);
      await ctx.submissions.submit({
        row: {
          ...requestColumns(jobId, key.id, request),
          request_id: requestId ?? null,
          created_at: new Date(),
        },
        data: { jobId, request, priority, ...(applied && { webhook: true }) },
        webhook: applied,
        group: groupOf(key, limits),
        priority,
        ...(idempotency && {
          idempotencyKey: { apiKeyId: key.id, key: idempotency.key, requestHash: idempotency.hash, jobId },
        }),
      });
      ctx.metrics.jobsSubmitted('async');
      return { jobId, status: 'queued', replayed: false };
    },
  );
}
