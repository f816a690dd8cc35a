import { randomUUID } from 'node:crypto';
import type { ServiceContext } from '../context';
import type { ScrapeRequest } from '../scraper/scrape-request';
import type { ApiKeyIdentity } from '../store/api-keys';
import { isIdempotencyKeyTaken } from '../store/idempotency-keys';
import type { JobStatus } from '../store/schema';
import type { JobWebhook } from '../store/webhooks';
import { requestColumns } from './history-row';
import { earlierSubmission, idempotencyOf, type Idempotency } from './idempotency';
import { checkMonthlyQuota, groupOf, limitsOf } from './key-limits';
import { effectiveWebhook } from './webhook-trigger';

type SubmitContext = Pick<ServiceContext, 'store' | 'config' | 'queueCaps' | 'rounds' | 'submissions'>;

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
 * With an idempotency key, a key used in the last 24 hours answers its earlier job (same request)
 * or refuses (another request), before any limit is checked: the earlier submission was accepted.
 * A new key is recorded in the job's own transaction, so of two concurrent submissions with one key
 * only the first commits a job, and the second answers it.
 */
export async function submitScrapeJob(
  ctx: SubmitContext,
  key: ApiKeyIdentity,
  { request, webhook }: { request: ScrapeRequest; webhook?: JobWebhook | undefined },
  idempotencyKey?: string,
): Promise<Submitted> {
  const idempotency =
    idempotencyKey === undefined
      ? undefined
      : idempotencyOf(idempotencyKey, { job: request, ...(webhook && { webhook }) });
  if (idempotency) {
    const earlier = await replay(ctx, key, idempotency);
    if (earlier) return earlier;
  }
  const limits = limitsOf(key, ctx.config);
  await checkMonthlyQuota(ctx.store.db, key, limits);
  await ctx.queueCaps.check(ctx.store.db, key, limits);
  const priority = await ctx.rounds.priorityOf(key.id, limits.concurrency);
  const jobId = randomUUID();
  const applied = effectiveWebhook(key, webhook);
  try {
    await ctx.submissions.submit({
      row: { ...requestColumns(jobId, key.id, request), created_at: new Date() },
      data: { jobId, request, priority, ...(applied && { webhook: true }) },
      webhook: applied,
      group: groupOf(key, limits),
      priority,
      ...(idempotency && {
        idempotencyKey: { apiKeyId: key.id, key: idempotency.key, requestHash: idempotency.hash, jobId },
      }),
    });
  } catch (err) {
    // A concurrent submission recorded the key first: its job is the answer.
    const earlier =
      idempotency && isIdempotencyKeyTaken(err) ? await replay(ctx, key, idempotency) : undefined;
    if (earlier) return earlier;
    throw err;
  }
  return { jobId, status: 'queued', replayed: false };
}

/** The earlier job of an idempotency key, or a refusal when it came with another request. */
async function replay(
  ctx: SubmitContext,
  key: ApiKeyIdentity,
  idempotency: Idempotency,
): Promise<Submitted | undefined> {
  const earlier = await earlierSubmission(ctx.store.db, key.id, idempotency);
  // A batch's hash never equals a job's (the route is part of it): earlierSubmission refused it.
  if (!earlier?.jobId) return undefined;
  return { jobId: earlier.jobId, status: earlier.status, replayed: true };
}
