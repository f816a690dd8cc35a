import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type Express, type RequestHandler } from 'express';
import type { ServiceContext } from '../context';
import { errorHandler, HttpError, routeNotFound } from './errors';
import { requestIds } from './request-id';

const digest = (text: string) => createHash('sha256').update(text).digest();

const tokenRequired = () =>
  new HttpError(401, 'UNAUTHORIZED', 'GET /metrics requires Authorization: Bearer <metrics token>.', {
    'WWW-Authenticate': 'Bearer realm="omniscrape metrics"',
  });

/**
 * GET /metrics: the Prometheus exposition of this process. Open to whoever reaches it unless
 * OMNISCRAPE_METRICS_TOKEN is set; then `Authorization: Bearer <token>` is required, compared in
 * constant time (as digests, so the token's length does not show either).
 */
export function metricsRoute(ctx: Pick<ServiceContext, 'metrics' | 'config'>): RequestHandler {
  const expected = ctx.config.metricsToken === undefined ? undefined : digest(ctx.config.metricsToken);
  return async (req, res) => {
    if (expected) {
      const [scheme, token] = (req.get('authorization') ?? '').split(' ', 2);
      if (scheme?.toLowerCase() !== 'bearer' || !token || !timingSafeEqual(digest(token), expected))
        throw tokenRequired();
    }
    const text = await ctx.metrics.exposition();
    res.type(ctx.metrics.contentType).send(text);
  };
}

/**
 * The app of OMNISCRAPE_METRICS_PORT: GET /metrics alone, for a worker (which serves no API) or
 * to keep the metrics off the API's port. Its requests are not counted in the HTTP metrics.
 */
export function createMetricsApp(ctx: Pick<ServiceContext, 'metrics' | 'config' | 'logger'>): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestIds(ctx.logger));
  app.get('/metrics', metricsRoute(ctx));
  app.use(routeNotFound);
  app.use(errorHandler(ctx.logger));
  return app;
}
