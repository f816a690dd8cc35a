import { dashboardRoutes, serviceRoutes } from './page-routes';
import type { RouteSpec } from './route-spec';
import { batchRoutes, jobRoutes, scrapeRoutes } from './v1-routes';

export type { ErrorsByStatus, ResponseHeader, RouteSpec, SuccessSpec } from './route-spec';

/** Every route the API serves, with its request and answers: the OpenAPI document and the tests read it. */
export const ROUTES: readonly RouteSpec[] = [
  ...scrapeRoutes,
  ...jobRoutes,
  ...batchRoutes,
  ...serviceRoutes,
  ...dashboardRoutes,
];
