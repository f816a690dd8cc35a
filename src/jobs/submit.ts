import { randomUUID } from 'node:crypto';
import type { ServiceContext } from '../context';
import type { ScrapeRequest } from '../scraper/scrape-request';
import type { ApiKeyIdentity } from '../store/api-keys';
import { requestColumns } from './history-row';
import { checkMonthlyQuota, groupOf, limitsOf } from './key-limits';

/**
 * Accepts an async scrape after the key's quota and queue cap checks. The history row and the
 * pg-boss job are written in one transaction (shared with concurrent submissions, see
 * SubmitBatcher) before this resolves, so a 202 means both exist and survive a crash. Both share
 * one id; the pg-boss job is in the key's group (its concurrency limit), and its priority puts it
 * in its key's round (KeyRounds).
 */
export async function submitScrapeJob(
  ctx: Pick<ServiceContext, 'store' | 'config' | 'queueCaps' | 'rounds' | 'submissions'>,
  key: ApiKeyIdentity,
  request: ScrapeRequest,
): Promise<{ jobId: string; createdAt: Date }> {
  const limits = limitsOf(key, ctx.config);
  await checkMonthlyQuota(ctx.store.db, key, limits);
  await ctx.queueCaps.check(ctx.store.db, key, limits);
  const priority = await ctx.rounds.priorityOf(key.id, limits.concurrency);
  const jobId = randomUUID();
  const createdAt = new Date();
  await ctx.submissions.submit({
    row: {
      ...requestColumns(jobId, key.id, request),
      created_at: createdAt,
    },
    data: { jobId, request, priority },
    group: groupOf(key, limits),
    priority,
  });
  return { jobId, createdAt };
}
