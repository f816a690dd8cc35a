import type { z } from 'zod';
import type { ErrorCode } from './errors';
import * as req from './requests';
import * as res from './responses';

/** Response headers the document declares once (components.headers) and routes name. */
export type ResponseHeader = 'Retry-After' | 'Location' | 'Idempotent-Replayed' | 'Set-Cookie';

export interface SuccessSpec {
  description: string;
  /** The JSON body; absent for HTML, SSE and files (`contentType` says which). */
  schema?: z.ZodType;
  contentType?: string;
  headers?: ResponseHeader[];
}

export interface RouteSpec {
  method: 'get' | 'post' | 'delete';
  /** OpenAPI form: `/v1/jobs/{job_id}`. */
  path: string;
  summary: string;
  description?: string;
  tag: 'scrape' | 'jobs' | 'batches' | 'service' | 'dashboard';
  /** `apiKey`: X-API-Key; `dashboard`: an admin key by X-API-Key or a sign-in session cookie. */
  auth: 'apiKey' | 'dashboard' | 'none';
  query?: z.ZodObject;
  body?: z.ZodType;
  /** A form body instead of JSON (the dashboard's sign-in). */
  formBody?: boolean;
  idempotencyKey?: boolean;
  lastEventId?: boolean;
  responses: Record<number, SuccessSpec>;
  /** The error answers `{ success: false, error, code }` this route gives, by status. */
  errors: Partial<Record<number, ErrorCode[]>>;
}

/** What every /v1 route may answer besides its own: a bad key, a bad body, Postgres away. */
const V1_ERRORS = {
  400: ['INVALID_REQUEST'],
  401: ['UNAUTHORIZED'],
  413: ['PAYLOAD_TOO_LARGE'],
  415: ['UNSUPPORTED_MEDIA_TYPE'],
  500: ['INTERNAL_ERROR'],
  503: ['QUEUE_UNAVAILABLE'],
} satisfies Partial<Record<number, ErrorCode[]>>;

const SUBMIT_ERRORS = {
  ...V1_ERRORS,
  402: ['MONTHLY_QUOTA_EXCEEDED'],
  409: ['IDEMPOTENCY_KEY_REUSED'],
  429: ['TOO_MANY_QUEUED_JOBS'],
} satisfies Partial<Record<number, ErrorCode[]>>;

const JOB = { ...V1_ERRORS, 404: ['JOB_NOT_FOUND'] } satisfies Partial<Record<number, ErrorCode[]>>;
const BATCH = { ...V1_ERRORS, 404: ['BATCH_NOT_FOUND'] } satisfies Partial<Record<number, ErrorCode[]>>;
const DASHBOARD = { 401: ['UNAUTHORIZED'], 403: ['FORBIDDEN'], 500: ['INTERNAL_ERROR'] } satisfies Partial<
  Record<number, ErrorCode[]>
>;

const scrapeRoutes: RouteSpec[] = [
  {
    method: 'post',
    path: '/v1/scrape',
    tag: 'scrape',
    auth: 'apiKey',
    summary: 'Scrape a page and wait for it',
    description: "Runs the scrape at once, holding one of the key's concurrency slots.",
    body: req.scrapeRequest,
    responses: {
      200: { description: 'The page.', schema: res.scrapeSuccess },
      502: { description: 'The target could not be scraped; nothing is charged.', schema: res.scrapeFailure },
    },
    errors: { ...V1_ERRORS, 402: ['MONTHLY_QUOTA_EXCEEDED'], 429: ['CONCURRENCY_LIMIT'] },
  },
  {
    method: 'post',
    path: '/v1/scrape/async',
    tag: 'scrape',
    auth: 'apiKey',
    summary: 'Queue a scrape job',
    body: req.asyncScrapeRequest,
    idempotencyKey: true,
    responses: {
      202: { description: 'Queued; poll `Location`.', schema: res.jobAccepted, headers: ['Location'] },
      200: {
        description: 'A replay of an earlier request with this Idempotency-Key: nothing new was queued.',
        schema: res.jobAccepted,
        headers: ['Location', 'Idempotent-Replayed'],
      },
    },
    errors: SUBMIT_ERRORS,
  },
  {
    method: 'post',
    path: '/v1/scrape/batch',
    tag: 'scrape',
    auth: 'apiKey',
    summary: 'Queue many scrape jobs at once',
    description: 'Any bad item refuses the whole batch, naming each bad item (`requests[3].url: …`).',
    body: req.batchRequest,
    idempotencyKey: true,
    responses: {
      202: { description: 'Queued; poll `Location`.', schema: res.batchAccepted, headers: ['Location'] },
      200: {
        description: 'A replay of an earlier request with this Idempotency-Key: nothing new was queued.',
        schema: res.batchAccepted,
        headers: ['Location', 'Idempotent-Replayed'],
      },
    },
    errors: SUBMIT_ERRORS,
  },
];

const jobRoutes: RouteSpec[] = [
  {
    method: 'get',
    path: '/v1/jobs',
    tag: 'jobs',
    auth: 'apiKey',
    summary: "List the key's jobs, newest first",
    query: req.jobListQuery,
    responses: { 200: { description: 'A page of jobs (results left out).', schema: res.jobPage } },
    errors: V1_ERRORS,
  },
  {
    method: 'get',
    path: '/v1/jobs/{job_id}',
    tag: 'jobs',
    auth: 'apiKey',
    summary: 'Poll a job',
    description: 'With `?wait=`, the answer is held until the job ends or the wait is over.',
    query: req.jobPollQuery,
    responses: { 200: { description: 'The job, with its result once completed.', schema: res.jobAnswer } },
    errors: JOB,
  },
  {
    method: 'delete',
    path: '/v1/jobs/{job_id}',
    tag: 'jobs',
    auth: 'apiKey',
    summary: 'Cancel a queued job',
    responses: { 200: { description: 'The cancelled job.', schema: res.jobAnswer } },
    errors: { ...JOB, 409: ['JOB_NOT_CANCELLABLE'] },
  },
  {
    method: 'get',
    path: '/v1/jobs/{job_id}/events',
    tag: 'jobs',
    auth: 'apiKey',
    summary: "Server-Sent Events of a job's status",
    description:
      "Each event's data is the job object (as `data` of the poll); the stream ends when the job does.",
    lastEventId: true,
    responses: { 200: { description: 'An event stream.', contentType: 'text/event-stream' } },
    errors: JOB,
  },
  {
    method: 'get',
    path: '/v1/jobs/{job_id}/webhooks',
    tag: 'jobs',
    auth: 'apiKey',
    summary: "The job's webhook delivery attempts",
    responses: { 200: { description: 'Oldest first.', schema: res.webhookDeliveries } },
    errors: JOB,
  },
  {
    method: 'post',
    path: '/v1/jobs/{job_id}/webhooks/redeliver',
    tag: 'jobs',
    auth: 'apiKey',
    summary: "Send the finished job's webhook again",
    responses: { 202: { description: 'Redelivery queued.', schema: res.redeliveryAccepted } },
    errors: { ...JOB, 409: ['WEBHOOK_NOT_CONFIGURED', 'JOB_NOT_FINISHED'] },
  },
];

const batchRoutes: RouteSpec[] = [
  {
    method: 'get',
    path: '/v1/batches/{batch_id}',
    tag: 'batches',
    auth: 'apiKey',
    summary: "A batch's counts per status and a page of its jobs",
    query: req.batchPageQuery,
    responses: { 200: { description: 'The batch.', schema: res.batchAnswer } },
    errors: BATCH,
  },
  {
    method: 'get',
    path: '/v1/batches/{batch_id}/events',
    tag: 'batches',
    auth: 'apiKey',
    summary: "Server-Sent Events of a batch's progress",
    description: "Each event's data is a BatchSummary; the stream ends when no job is queued or processing.",
    lastEventId: true,
    responses: { 200: { description: 'An event stream.', contentType: 'text/event-stream' } },
    errors: BATCH,
  },
  {
    method: 'delete',
    path: '/v1/batches/{batch_id}',
    tag: 'batches',
    auth: 'apiKey',
    summary: "Cancel a batch's queued jobs",
    responses: { 200: { description: 'How many were cancelled.', schema: res.batchCancelled } },
    errors: BATCH,
  },
];

const serviceRoutes: RouteSpec[] = [
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

const dashboardRoutes: RouteSpec[] = [
  {
    method: 'get',
    path: '/dashboard/',
    tag: 'dashboard',
    auth: 'dashboard',
    summary: 'The operator page (admin keys)',
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

/** Every route the API serves, with its request and answers: the OpenAPI document and the tests read it. */
export const ROUTES: readonly RouteSpec[] = [
  ...scrapeRoutes,
  ...jobRoutes,
  ...batchRoutes,
  ...serviceRoutes,
  ...dashboardRoutes,
];
