import { dashboardRangeQuery } from './requests';
import * as res from './responses';
import type { ErrorsByStatus, RouteSpec } from './route-spec';

const DASHBOARD = {
  401: ['UNAUTHORIZED'],
  403: ['FORBIDDEN'],
  429: ['TOO_MANY_FAILED_SIGN_INS'],
  500: ['INTERNAL_ERROR'],
} satisfies ErrorsByStatus;

/**
 * The web pages and their files: the API reference page, and the operator's dashboard with its
 * sign-in and data. Checked like every route, but left out of the public API document: a client
 * generated from it has no use for HTML pages and static files.
 */
export const pageRoutes: RouteSpec[] = [
  {
    method: 'get',
    path: '/docs',
    operationId: 'getReferencePage',
    tag: 'pages',
    auth: 'none',
    summary: 'The API reference as a web page',
    description: 'Swagger UI rendering /openapi.json, served from its npm package.',
    responses: { 200: { description: 'HTML.', contentType: 'text/html' } },
    errors: {},
  },
  {
    method: 'get',
    path: '/docs/{file}',
    operationId: 'getReferencePageFile',
    tag: 'pages',
    auth: 'none',
    summary: "The reference page's scripts and styles",
    description: 'A static file of the reference page.',
    responses: { 200: { description: 'A static file.', contentType: 'application/octet-stream' } },
    errors: { 404: ['NOT_FOUND'] },
  },
  {
    method: 'get',
    path: '/dashboard/',
    operationId: 'getDashboard',
    tag: 'pages',
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
    operationId: 'getDashboardData',
    tag: 'pages',
    auth: 'dashboard',
    summary: "The operator page's figures",
    description: 'The figures the page draws, for a named range or `from` and `to`.',
    query: dashboardRangeQuery,
    responses: { 200: { description: 'Figures for the range.', schema: res.dashboardData } },
    errors: { ...DASHBOARD, 400: ['INVALID_REQUEST'] },
  },
  {
    method: 'get',
    path: '/dashboard/assets/{name}',
    operationId: 'getDashboardAsset',
    tag: 'pages',
    auth: 'none',
    summary: "The operator page's scripts and styles",
    description: 'A static file of the operator page.',
    responses: { 200: { description: 'A static file.', contentType: 'application/octet-stream' } },
    errors: { 404: ['NOT_FOUND'] },
  },
  {
    method: 'get',
    path: '/dashboard/sign-in',
    operationId: 'getSignInPage',
    tag: 'pages',
    auth: 'none',
    summary: 'The sign-in form',
    description: 'Asks for an admin key.',
    responses: { 200: { description: 'HTML.', contentType: 'text/html' } },
    errors: {},
  },
  {
    method: 'post',
    path: '/dashboard/sign-in',
    operationId: 'signIn',
    tag: 'pages',
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
    operationId: 'signOut',
    tag: 'pages',
    auth: 'none',
    summary: 'Sign out',
    description: 'Ends the session and forgets its cookie.',
    responses: { 303: { description: 'To /dashboard/sign-in.', headers: ['Location', 'Set-Cookie'] } },
    errors: { 403: ['FORBIDDEN'], 500: ['INTERNAL_ERROR'] },
  },
];
