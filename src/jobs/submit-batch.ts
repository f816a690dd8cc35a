import { randomUUID } from 'node:crypto';
import type { ServiceContext } from '../context';
import type { ScrapeRequest } from '../scraper/scrape-request';
import type { ApiKeyIdentity } from '../store/api-keys';
import { requestColumns } from './history-row';
import { checkMonthlyQuota, groupOf, limitsOf } from './key-limits';
import type { QueuedSubmission } from './submit-batcher';

/**
 * Accepts a batch of async scrapes as a whole or not at all: the key's quota is checked once, and
 * the whole batch must fit under its queued-jobs cap. Its jobs take the key's next places in the
 * fairness rounds in request order (a round of the key's concurrency at a time), so a large batch
 * waits behind other keys' jobs round by round rather than in front of them. Everything (the batch,
 * the history rows, the pg-boss jobs) is committed before this resolves.
 */
export async function submitScrapeBatch(
  ctx: Pick<ServiceContext, 'store' | 'config' | 'queueCaps' | 'rounds' | 'submissions'>,
  key: ApiKeyIdentity,
  requests: readonly ScrapeRequest[],
): Promise<{ batchId: string; jobIds: string[] }> {
  const limits = limitsOf(key, ctx.config);
  await checkMonthlyQuota(ctx.store.db, key, limits);
  await ctx.queueCaps.check(ctx.store.db, key, limits, requests.length);
  const priorities = await ctx.rounds.prioritiesOf(key.id, limits.concurrency, requests.length);
  const group = groupOf(key, limits);
  const createdAt = new Date();
  const submissions = requests.map((request, i): QueuedSubmission => {
    const jobId = randomUUID();
    const priority = priorities[i]!;
    return {
      row: { ...requestColumns(jobId, key.id, request), created_at: createdAt },
      data: { jobId, request, priority },
      group,
      priority,
    };
  });
  const batchId = randomUUID();
  await ctx.submissions.submitBatch(batchId, key.id, submissions);
  return { batchId, jobIds: submissions.map((s) => s.data.jobId) };
}
