import { Router } from 'express';
import type { z } from 'zod';
import type { batchAccepted, jobAccepted } from '../contract/responses';
import type { ServiceContext } from '../context';
import { runSyncScrape } from '../jobs/sync-scrape';
import { submitScrapeJob } from '../jobs/submit';
import { submitScrapeBatch } from '../jobs/submit-batch';
import { parseBatchRequest } from './batch-schema';
import { apiKeyOf } from './auth';
import { parseIdempotencyKey, parseScrapeRequest } from './scrape-schema';
import { takeWebhook } from './webhook-schema';

export function scrapeRouter(ctx: ServiceContext): Router {
  const router = Router();

  router.post('/scrape', async (req, res) => {
    const request = parseScrapeRequest(req.body, ctx.scraper.noRendering);
    // A client that hangs up (or a server stopping past its grace period) abandons the scrape.
    const clientGone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) clientGone.abort();
    });
    // Tracked so a stopping server waits for it: the client's socket may be gone, but the outcome
    // still has to be recorded before the pool closes.
    const body = await ctx.inFlight.track(
      runSyncScrape({ ...ctx, logger: req.log }, apiKeyOf(req), request, {
        requestId: req.id,
        clientGone: clientGone.signal,
      }),
    );
    if (!clientGone.signal.aborted) res.status(body.success ? 200 : 502).json(body);
  });

  router.post('/scrape/async', async (req, res) => {
    const idempotencyKey = parseIdempotencyKey(req.get('idempotency-key'));
    const { rest, webhook } = takeWebhook(req.body, 'webhook', ctx.config);
    const request = parseScrapeRequest(rest, ctx.scraper.noRendering);
    const submitted = await submitScrapeJob(
      ctx,
      apiKeyOf(req),
      { request, webhook, requestId: req.id },
      idempotencyKey,
    );
    const poll = `/v1/jobs/${submitted.jobId}`;
    // A replay answers 200: nothing new was accepted.
    if (submitted.replayed) res.status(200).set('Idempotent-Replayed', 'true');
    else res.status(202);
    const body = { success: true, job_id: submitted.jobId, status: submitted.status, poll } as const;
    res.location(poll).json(body satisfies z.input<typeof jobAccepted>);
  });

  router.post('/scrape/batch', async (req, res) => {
    const idempotencyKey = parseIdempotencyKey(req.get('idempotency-key'));
    const batch = await parseBatchRequest(req.body, ctx.config.maxBatch, ctx.config, ctx.scraper.noRendering);
    const submitted = await submitScrapeBatch(ctx, apiKeyOf(req), batch, idempotencyKey, req.id);
    const poll = `/v1/batches/${submitted.batchId}`;
    // A replay answers 200: nothing new was accepted.
    if (submitted.replayed) res.status(200).set('Idempotent-Replayed', 'true');
    else res.status(202);
    const body = { success: true, batch_id: submitted.batchId, job_ids: submitted.jobIds, poll } as const;
    res.location(poll).json(body satisfies z.input<typeof batchAccepted>);
  });

  return router;
}
