import { dashboardRangeQuery } from './requests';
import * as res from './responses';
import type { ErrorsByStatus, RouteSpec } from './route-spec';

const DASHBOARD = {
  401: ['UNAUTHORIZED'],
  403: ['FORBIDDEN'],
  429: ['TOO_MANY_FAILED_SIGN_INS'],
  500: ['INTERNAL_ERROR'],
} satisfies ErrorsByStatus;

export const serviceRoutes: RouteSpec[] = [
  {
    method: 'get',
    path: '/healthz',
    tag: 'service',
    auth: 'none',
    summary: 'Liveness',
    responses: { 200: { description: 'The process answers.', schema: res.health } },
    errors: {},
  },
  {
    method: 'get',
    path: '/readyz',
    tag: 'service',
    auth: 'none',
    summary: 'Readiness: Postgres reachable and migrated',
    responses: { 200: { description: 'Ready.', schema: res.ready } },
    errors: { 503: ['NOT_READY'] },
  },
  {
    method: 'get',
    path: '/metrics',
    tag: 'service',
    auth: 'none',
    summary:
      'Prometheus metrics (on OMNISCRAPE_METRICS_PORT instead when set; a bearer token when OMNISCRAPE_METRICS_TOKEN is set)',
    responses: { 200: { description: 'Prometheus text exposition.', contentType: 'text/plain' } },
    errors: { 401: ['UNAUTHORIZED'] },
  },
  {
    method: 'get',
    path: '/openapi.json',
    tag: 'service',
    auth: 'none',
    summary: 'This document',
    responses: { 200: { description: 'OpenAPI 3.1.', contentType: 'application/json' } },
    errors: {},
  },
  {
    method: 'get',
    path: '/docs',
    tag: 'service',
    auth: 'none',
    summary: 'This reference as a web page',
    responses: { 200: { description: 'HTML.', contentType: 'text/html' } },
    errors: {},
  },
  {
    method: 'get',
    path: '/docs/{file}',
    tag: 'service',
    auth: 'none',
    summary: "The reference page's scripts and styles",
    responses: { 200: { description: 'A static file.', contentType: 'application/octet-stream' } },
    errors: { 404: ['NOT_FOUND'] },
  },
];

export const dashboardRoutes: RouteSpec[] = [
  {
    method: 'get',
    path: '/dashboard/',
    tag: 'dashboard',
    auth: 'dashboard',
    summary: 'The operator page (admin keys)',
    query: dashboardRangeQuery,
    description: 'Without a session, redirects to the sign-in page.',
    responses: {
      200: { description: 'HTML.', contentType: 'text/html' },
      303: { description: 'To /dashboard/sign-in.', headers: ['Location'] },
    },
    errors: { ...DASHBOARD, 400: ['INVALID_REQUEST'] },
  },
  {
    method: 'get',
    path: '/dashboard/data',
    tag: 'dashboard',
    auth: 'dashboard',
    summary: "The operator page's figures",
    query: dashboardRangeQuery,
    responses: { 200: { description: 'Figures for the range.', schema: res.dashboardData } },
    errors: { ...DASHBOARD, 400: ['INVALID_REQUEST'] },
  },
  {
    method: 'get',
    path: '/dashboard/assets/{name}',
    tag: 'dashboard',
    auth: 'none',
    summary: "The operator page's scripts and styles",
    responses: { 200: { description: 'A static file.', contentType: 'application/octet-stream' } },
    errors: { 404: ['NOT_FOUND'] },
  },
  {
    method: 'get',
    path: '/dashboard/sign-in',
    tag: 'dashboard',
    auth: 'none',
    summary: 'The sign-in form',
    responses: { 200: { description: 'HTML.', contentType: 'text/html' } },
    errors: {},
  },
  {
    method: 'post',
    path: '/dashboard/sign-in',
    tag: 'dashboard',
    auth: 'none',
    summary: 'Sign in with an admin key (form field `key`)',
    formBody: true,
    responses: {
      303: {
        description: 'Signed in: to /dashboard/, with the session cookie.',
        headers: ['Location', 'Set-Cookie'],
      },
      401: { description: 'An unknown or revoked key: the form again, saying so.', contentType: 'text/html' },
      429: {
        description: 'Too many failed sign-ins from this address: the form again, saying when to retry.',
        contentType: 'text/html',
        headers: ['Retry-After'],
      },
    },
    errors: { 403: ['FORBIDDEN'], 500: ['INTERNAL_ERROR'] },
    description:
      'A key that is not an admin key gets the form again with 403 (HTML); a post from another site gets 403 FORBIDDEN.',
  },
  {
    method: 'post',
    path: '/dashboard/sign-out',
    tag: 'dashboard',
    auth: 'none',
    summary: 'Sign out',
    responses: { 303: { description: 'To /dashboard/sign-in.', headers: ['Location', 'Set-Cookie'] } },
    errors: { 403: ['FORBIDDEN'], 500: ['INTERNAL_ERROR'] },
  },
];
