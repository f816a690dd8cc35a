import { randomUUID } from 'node:crypto';
import { fromKysely } from 'pg-boss';
import type { ServiceContext } from '../context';
import type { ScrapeRequest } from '../scraper/scrape-request';
import { insertQueuedScrapeJob } from '../store/scrape-jobs';
import type { ApiKeyIdentity } from '../store/api-keys';
import { checkMonthlyQuota, checkQueueCap, groupOf, limitsOf } from './key-limits';
import { SCRAPE_QUEUE, type ScrapeJobData } from './queue';

/**
 * Accepts an async scrape after the key's quota and queue cap checks: the history row and the
 * pg-boss job are written in one transaction, so a 202 means both exist (and survive a crash) or
 * neither does. Both share one id; the pg-boss job is in the key's group (its concurrency limit).
 */
export async function submitScrapeJob(
  ctx: Pick<ServiceContext, 'store' | 'boss' | 'config'>,
  key: ApiKeyIdentity,
  request: ScrapeRequest,
): Promise<{ jobId: string; createdAt: Date }> {
  const limits = limitsOf(key, ctx.config);
  await checkMonthlyQuota(ctx.store.db, key, limits);
  await checkQueueCap(ctx.store.db, key, limits);
  const apiKeyId = key.id;
  const jobId = randomUUID();
  const createdAt = new Date();
  await ctx.store.db.transaction().execute(async (trx) => {
    await insertQueuedScrapeJob(trx, {
      id: jobId,
      api_key_id: apiKeyId,
      kind: 'async',
      url: request.url,
      host: new URL(request.url).hostname,
      method: request.method,
      format: request.format,
      timeout_seconds: request.timeout,
      status: 'queued',
      created_at: createdAt,
    });
    const data: ScrapeJobData = { jobId, request };
    await ctx.boss.send(SCRAPE_QUEUE, data, { id: jobId, group: groupOf(key, limits), db: fromKysely(trx) });
  });
  return { jobId, createdAt };
}
