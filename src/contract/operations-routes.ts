import * as res from './responses';
import type { RouteSpec } from './route-spec';

/** Health, readiness, metrics and the API document: for probes, scrapers and client generators, no key. */
export const operationsRoutes: RouteSpec[] = [
  {
    method: 'get',
    path: '/healthz',
    operationId: 'getHealth',
    tag: 'operations',
    auth: 'none',
    summary: 'Liveness',
    description:
      'Answers 200 while the process serves HTTP, whatever the state of Postgres: a liveness probe.',
    responses: { 200: { description: 'The process answers.', schema: res.health } },
    errors: {},
  },
  {
    method: 'get',
    path: '/readyz',
    operationId: 'getReadiness',
    tag: 'operations',
    auth: 'none',
    summary: 'Readiness: Postgres reachable and migrated',
    description:
      'Answers 200 when Postgres answers and its schema is migrated, else 503 `NOT_READY`: a readiness probe.',
    responses: { 200: { description: 'Ready.', schema: res.ready } },
    errors: { 503: ['NOT_READY'] },
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'getMetrics',
    tag: 'operations',
    auth: 'none',
    summary: 'Prometheus metrics',
    description:
      'The Prometheus text exposition of the process. Served on OMNISCRAPE_METRICS_PORT instead when that is set; asks for a bearer token when OMNISCRAPE_METRICS_TOKEN is set (401 without it).',
    responses: { 200: { description: 'Prometheus text exposition.', contentType: 'text/plain' } },
    errors: { 401: ['UNAUTHORIZED'] },
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'getOpenApiDocument',
    tag: 'operations',
    auth: 'none',
    summary: 'This document',
    description: 'The OpenAPI 3.1 document of the public API, generated from the schemas that validate it.',
    responses: { 200: { description: 'OpenAPI 3.1.', contentType: 'application/json' } },
    errors: {},
  },
];
