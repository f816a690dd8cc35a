import type { z } from 'zod';
import * as req from './requests';
import * as res from './responses';
import type { ErrorsByStatus, RouteSpec } from './route-spec';

/**
 * What every /v1 route may answer besides its own: a bad key, a bad body, Postgres away, too many
 * failed sign-ins from the client's address, too many body bytes of the key being read.
 */
const V1_ERRORS = {
  400: ['INVALID_REQUEST'],
  401: ['UNAUTHORIZED'],
  413: ['PAYLOAD_TOO_LARGE'],
  415: ['UNSUPPORTED_MEDIA_TYPE'],
  429: ['TOO_MANY_FAILED_SIGN_INS', 'TOO_MANY_REQUEST_BYTES'],
  500: ['INTERNAL_ERROR'],
  503: ['QUEUE_UNAVAILABLE'],
} satisfies ErrorsByStatus;

const SUBMIT_ERRORS = {
  ...V1_ERRORS,
  402: ['MONTHLY_QUOTA_EXCEEDED'],
  409: ['IDEMPOTENCY_KEY_REUSED'],
  429: [...V1_ERRORS[429], 'TOO_MANY_QUEUED_JOBS'],
} satisfies ErrorsByStatus;

/** A submit's answers: 202 when queued, 200 when an Idempotency-Key replays an earlier request. */
const submitResponses = (schema: z.ZodType): RouteSpec['responses'] => ({
  202: { description: 'Queued; poll `Location`.', schema, headers: ['Location'] },
  200: {
    description: 'A replay of an earlier request with this Idempotency-Key: nothing new was queued.',
    schema,
    headers: ['Location', 'Idempotent-Replayed'],
  },
});

const JOB = { ...V1_ERRORS, 404: ['JOB_NOT_FOUND'] } satisfies ErrorsByStatus;
const BATCH = { ...V1_ERRORS, 404: ['BATCH_NOT_FOUND'] } satisfies ErrorsByStatus;
/** A request that holds its connection (an event stream, a `?wait=`) counts against the key's and the server's caps. */
const HELD = { 429: ['TOO_MANY_STREAMS'] } satisfies ErrorsByStatus;
export const scrapeRoutes: RouteSpec[] = [
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
    errors: { ...V1_ERRORS, 402: ['MONTHLY_QUOTA_EXCEEDED'], 429: [...V1_ERRORS[429], 'CONCURRENCY_LIMIT'] },
  },
  {
    method: 'post',
    path: '/v1/scrape/async',
    tag: 'scrape',
    auth: 'apiKey',
    summary: 'Queue a scrape job',
    body: req.asyncScrapeRequest,
    idempotencyKey: true,
    responses: submitResponses(res.jobAccepted),
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
    responses: submitResponses(res.batchAccepted),
    errors: SUBMIT_ERRORS,
  },
];

export const jobRoutes: RouteSpec[] = [
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
    errors: { ...JOB, ...HELD },
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
    errors: { ...JOB, ...HELD },
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
    description:
      'At most one redelivery of a job is pending: asked again before it is sent, the pending one is made due now (202 again) rather than a second queued. A key may ask for OMNISCRAPE_WEBHOOK_REDELIVERIES_PER_MINUTE a minute.',
    responses: { 202: { description: 'Redelivery queued.', schema: res.redeliveryAccepted } },
    errors: { ...JOB, 409: ['WEBHOOK_NOT_CONFIGURED', 'JOB_NOT_FINISHED'], 429: ['TOO_MANY_REDELIVERIES'] },
  },
];

export const batchRoutes: RouteSpec[] = [
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
    errors: { ...BATCH, ...HELD },
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
