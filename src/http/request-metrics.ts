import type { Request, RequestHandler } from 'express';
import { UNMATCHED_ROUTE, type ServiceMetrics } from '../metrics/service-metrics';

/**
 * Counts each request when its connection is done with it (answered, or closed before that), by
 * the route pattern it matched (`/v1/jobs/:job_id`, never the path itself: ids would make every
 * request a series of its own), its method and its status.
 */
export function requestMetrics(metrics: ServiceMetrics): RequestHandler {
  return (req, res, next) => {
    const began = performance.now();
    const route = routePatternOf(req);
    res.on('close', () =>
      metrics.httpAnswered(route(), req.method, res.statusCode, (performance.now() - began) / 1000),
    );
    next();
  };
}

/**
 * The pattern of the route a request matches, read when the router sets `req.route`: then
 * `req.baseUrl` is still the path the route's router is mounted at (`/v1`). The router restores
 * baseUrl as an error leaves it, so read at the end, a failed request would lose its mount.
 */
function routePatternOf(req: Request): () => string {
  let route: unknown;
  let pattern: string | undefined;
  Object.defineProperty(req, 'route', {
    configurable: true,
    enumerable: true,
    get: () => route,
    set(value: { path?: unknown } | undefined) {
      route = value;
      if (typeof value?.path === 'string') pattern = req.baseUrl + value.path;
    },
  });
  return () => pattern ?? UNMATCHED_ROUTE;
}
