import express, { type Express } from 'express';
import type { ServiceContext } from '../context';
import { isMigrated } from '../db/migration-state';
import { pingDatabase } from '../db/pool';
import { requireApiKey } from './auth';
import { BodyBudget } from './body-budget';
import { batchBodyLimitBytes, boundRequestBodies, REQUEST_BODY_LIMIT_BYTES } from './body-limits';
import { errorHandler, routeNotFound } from './errors';
import { weakEtag } from './etag';
import { batchesRouter } from './batches-router';
import { dashboardRouter } from './dashboard-router';
import { jobsRouter } from './jobs-router';
import { metricsRoute } from './metrics-route';
import { requestIds } from './request-id';
import { requestMetrics } from './request-metrics';
import { referenceRouter } from './reference-router';
import { scrapeRouter } from './scrape-router';
import { SignInThrottle } from './sign-in-throttle';

export function createApp(ctx: ServiceContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', weakEtag);
  app.set('trust proxy', false);
  app.use(requestIds(ctx.logger));
  app.use(requestMetrics(ctx.metrics));

  app.get('/healthz', (_req, res) => {
    res.json({ success: true, status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    try {
      await pingDatabase(ctx.store.db);
      const ready = (await isMigrated(ctx.store.db)) && (await ctx.boss.isInstalled());
      if (ready) {
        res.json({ success: true, status: 'ready' });
        return;
      }
      res.status(503).json({
        success: false,
        error: 'Database migrations are pending; run `omniscrape migrate`.',
        code: 'NOT_READY',
      });
    } catch {
      // The 503 is the report: probes run every few seconds, and the requests that fail log the outage.
      res
        .set('Retry-After', '5')
        .status(503)
        .json({ success: false, error: 'Postgres cannot be reached.', code: 'NOT_READY' });
    }
  });

  // Before any key is asked for, as Prometheus targets usually are (OMNISCRAPE_METRICS_TOKEN guards it).
  if (ctx.config.metricsPort === undefined) app.get('/metrics', metricsRoute(ctx));
  app.use(referenceRouter());

  const { config } = ctx;
  // One count of failed sign-ins per client address, for the API and the dashboard alike.
  const signIns = new SignInThrottle(config.signInFailureLimit, config.signInWindowSeconds, ctx.apiKeys);
  const bodies = new BodyBudget(config.requestBodyBudgetPerKeyBytes, config.requestBodyBudgetBytes);
  // A body larger than a key's whole budget could never be read: that is its limit too.
  const limitOf = (bytes: number) => Math.min(bytes, bodies.perKeyBytes, bodies.perProcessBytes);
  const batchLimit = limitOf(batchBodyLimitBytes(config.maxBatch));
  const bodyLimit = limitOf(REQUEST_BODY_LIMIT_BYTES);
  const v1 = express.Router();
  v1.use(requireApiKey(ctx.apiKeys, signIns));
  // Bounded and parsed here first, the batch's body is left alone by the general ones below.
  v1.use(
    '/scrape/batch',
    boundRequestBodies(bodies, batchLimit),
    express.json({ limit: batchLimit, strict: true, type: () => true }),
  );
  v1.use(boundRequestBodies(bodies, bodyLimit));
  v1.use(express.json({ limit: bodyLimit, strict: true, type: () => true }));
  v1.use(scrapeRouter(ctx));
  v1.use(jobsRouter(ctx));
  v1.use(batchesRouter(ctx));
  app.use('/v1', v1);
  // The operator page: admin keys only, by X-API-Key or a sign-in session (dashboard-auth.ts).
  app.use('/dashboard', dashboardRouter(ctx, signIns));

  app.use(routeNotFound);
  app.use(errorHandler(ctx.logger));
  return app;
}
