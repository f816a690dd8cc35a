import { randomUUID } from 'node:crypto';
import type { ServiceContext } from '../context';
import { ScrapeFailure } from '../errors';
import type { ScrapeRequest } from '../scraper/scrape-request';
import { insertScrapeJob } from '../store/scrape-jobs';
import { failureBody, statusForFailureCode, successBody, type ScrapeFailureBody, type ScrapeSuccessBody } from './outcome';

/**
 * Runs a scrape in the API process and records it in the job history (kind `sync`) so reporting
 * and billing see sync and async scrapes alike. The result itself is returned, not stored.
 */
export async function runSyncScrape(
  ctx: Pick<ServiceContext, 'store' | 'scraper' | 'config'>,
  apiKeyId: string,
  request: ScrapeRequest,
  clientGone?: AbortSignal,
): Promise<ScrapeSuccessBody | ScrapeFailureBody> {
  const startedAt = new Date();
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
  const finishedAt = new Date();
  await insertScrapeJob(ctx.store.db, {
    id: randomUUID(),
    api_key_id: apiKeyId,
    kind: 'sync',
    url: request.url,
    host: new URL(request.url).hostname,
    method: request.method,
    format: request.format,
    timeout_seconds: request.timeout,
    status: body.success ? 'completed' : statusForFailureCode(body.code),
    target_status_code: body.success ? body.data.status_code : null,
    error_code: body.success ? null : body.code,
    error_message: body.success ? null : body.error,
    attempts: 1,
    charged: body.billing.charged,
    result_bytes: body.success ? Buffer.byteLength(body.data.content) : null,
    elapsed_ms: Math.round(body.metadata.elapsed_time * 1000),
    created_at: startedAt,
    started_at: startedAt,
    finished_at: finishedAt,
    updated_at: finishedAt,
  });
  return body;
}
