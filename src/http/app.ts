import express, { type Express } from 'express';
import { sql } from 'kysely';
import type { ServiceContext } from '../context';
import { isMigrated } from '../store/database';
import { requireApiKey } from './auth';
import { errorHandler, routeNotFound } from './errors';
import { jobsRouter } from './jobs-router';
import { scrapeRouter } from './scrape-router';

export const REQUEST_BODY_LIMIT = '2mb';

export function createApp(ctx: ServiceContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);

  app.get('/healthz', (_req, res) => {
    res.json({ success: true, status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    try {
      await sql`select 1`.execute(ctx.store.db);
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

  const v1 = express.Router();
  v1.use(requireApiKey(ctx.apiKeys));
  v1.use(express.json({ limit: REQUEST_BODY_LIMIT, strict: true, type: () => true }));
  v1.use(scrapeRouter(ctx));
  v1.use(jobsRouter(ctx));
  app.use('/v1', v1);

  app.use(routeNotFound);
  app.use(errorHandler(ctx.logger));
  return app;
}
