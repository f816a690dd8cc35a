import { randomUUID } from 'node:crypto';
import type { ServiceContext } from '../context';
import { concurrencyLimitReached, ScrapeFailure } from '../errors';
import type { ScrapeRequest } from '../scraper/scrape-request';
import type { ApiKeyIdentity } from '../store/api-keys';
import { lockAndCountKeySlots, recordSuccessfulScrapes } from '../store/key-limits';
import { insertScrapeJob, transitionScrapeJob } from '../store/scrape-jobs';
import { checkMonthlyQuota, limitsOf, slotStaleAfterSeconds } from './key-limits';
import { failureBody, statusForFailureCode, successBody, type ScrapeFailureBody, type ScrapeSuccessBody } from './outcome';

/**
 * Runs a scrape in the API process. It holds one of the key's concurrency slots while it runs: its
 * history row (kind `sync`) is `processing` meanwhile, so sync and async scrapes share the limit,
 * and reporting and billing see both alike. The result itself is returned, not stored.
 */
export async function runSyncScrape(
  ctx: Pick<ServiceContext, 'store' | 'scraper' | 'config'>,
  key: ApiKeyIdentity,
  request: ScrapeRequest,
  clientGone?: AbortSignal,
): Promise<ScrapeSuccessBody | ScrapeFailureBody> {
  const { db } = ctx.store;
  const limits = limitsOf(key, ctx.config);
  await checkMonthlyQuota(db, key, limits);
  const jobId = randomUUID();
  await db.transaction().execute(async (trx) => {
    const slots = await lockAndCountKeySlots(trx, [key.id], [], slotStaleAfterSeconds(ctx.config));
    if ((slots.get(key.id)?.processing ?? 0) >= limits.concurrency) throw concurrencyLimitReached(limits.concurrency);
    await insertScrapeJob(trx, {
      id: jobId,
      api_key_id: key.id,
      kind: 'sync',
      url: request.url,
      host: new URL(request.url).hostname,
      method: request.method,
      format: request.format,
      timeout_seconds: request.timeout,
      status: 'processing',
      attempts: 1,
      started_at: new Date(),
    });
  });

  const started = performance.now();
  let body: ScrapeSuccessBody | ScrapeFailureBody;
  try {
    const page = await ctx.scraper.scrape(request, clientGone);
    body = successBody(page, performance.now() - started, ctx.config.pricePerScrape);
  } catch (err) {
    if (!(err instanceof ScrapeFailure)) throw err;
    // The client hung up (or the server is stopping): the scrape was abandoned, not the target's fault.
    const failure = clientGone?.aborted ? new ScrapeFailure('CLIENT_DISCONNECTED', 'The client closed the connection before the scrape finished.') : err;
    body = failureBody(failure, performance.now() - started);
  }

  await db.transaction().execute(async (trx) => {
    await transitionScrapeJob(trx, jobId, ['processing'], body.success ? 'completed' : statusForFailureCode(body.code), {
      target_status_code: body.success ? body.data.status_code : null,
      error_code: body.success ? null : body.code,
      error_message: body.success ? null : body.error,
      charged: body.billing.charged,
      result_bytes: body.success ? Buffer.byteLength(body.data.content) : null,
      elapsed_ms: Math.round(body.metadata.elapsed_time * 1000),
      finished_at: new Date(),
    });
  });
  // The outcome is committed: a failure to count it must not turn a delivered scrape into an error.
  if (body.success) await recordSuccessfulScrapes(db, new Map([[key.id, 1]])).catch(() => undefined);
  return body;
}
