import { operationsRoutes } from './operations-routes';
import { pageRoutes } from './page-routes';
import type { RouteSpec } from './route-spec';
import { batchRoutes, jobRoutes, scrapeRoutes } from './v1-routes';

export type { ErrorsByStatus, ResponseHeader, RouteSpec, RouteTag, SuccessSpec } from './route-spec';

/** The routes the public API document (/openapi.json) describes: the API, its probes and metrics. */
export const PUBLIC_ROUTES: readonly RouteSpec[] = [
  ...scrapeRoutes,
  ...jobRoutes,
  ...batchRoutes,
  ...operationsRoutes,
];

/** Every route the server answers, with its request and answers: the tests check every answer against it. */
export const ROUTES: readonly RouteSpec[] = [...PUBLIC_ROUTES, ...pageRoutes];
