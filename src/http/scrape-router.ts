import { Router } from 'express';
import type { ServiceContext } from '../context';
import { runSyncScrape } from '../jobs/sync-scrape';
import { submitScrapeJob } from '../jobs/submit';
import { apiKeyOf } from './auth';
import { parseScrapeRequest } from './scrape-schema';

export function scrapeRouter(ctx: ServiceContext): Router {
  const router = Router();

  router.post('/scrape', async (req, res) => {
    const request = parseScrapeRequest(req.body);
    // A client that hangs up (or a server stopping past its grace period) abandons the scrape.
    const clientGone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) clientGone.abort();
    });
    // Tracked so a stopping server waits for it: the client's socket may be gone, but the outcome
    // still has to be recorded before the pool closes.
    const body = await ctx.inFlight.track(runSyncScrape(ctx, apiKeyOf(req), request, clientGone.signal));
    if (!clientGone.signal.aborted) res.status(body.success ? 200 : 502).json(body);
  });

  router.post('/scrape/async', async (req, res) => {
    const request = parseScrapeRequest(req.body);
    const { jobId } = await submitScrapeJob(ctx, apiKeyOf(req), request);
    const poll = `/v1/jobs/${jobId}`;
    res.status(202).location(poll).json({ success: true, job_id: jobId, status: 'queued', poll });
  });

  return router;
}
