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
    operationId: 'scrape',
    tag: 'scrape',
    auth: 'apiKey',
    summary: 'Scrape a page and wait for it',
    description:
      "Runs the scrape at once, holding one of the key's concurrency slots, and answers the page (200) or why it could not be scraped (502, nothing charged).",
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
    operationId: 'submitScrapeJob',
    tag: 'jobs',
    auth: 'apiKey',
    summary: 'Queue a scrape job',
    description:
      'Queues the scrape as a job and answers its id at once. Follow it by polling `getJob` (with `?wait=`), its event stream, or a webhook POSTed when it ends.',
    body: req.asyncScrapeRequest,
    idempotencyKey: true,
    responses: submitResponses(res.jobAccepted),
    errors: SUBMIT_ERRORS,
  },
  {
    method: 'post',
    path: '/v1/scrape/batch',
    operationId: 'submitScrapeBatch',
    tag: 'batches',
    auth: 'apiKey',
    summary: 'Queue many scrape jobs at once',
    description:
      'Queues one job per item, all or none: any bad item refuses the whole batch, naming each bad item (`requests[3].url: …`). Follow the batch with `getBatch` or its event stream.',
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
    operationId: 'listJobs',
    tag: 'jobs',
    auth: 'apiKey',
    summary: "List the key's jobs, newest first",
    description:
      'A page of the jobs this key submitted, newest first, filtered by status and creation time; `next_cursor` asks for the next page.',
    query: req.jobListQuery,
    queryParameters: req.jobListParameters,
    responses: { 200: { description: 'A page of jobs (results left out).', schema: res.jobPage } },
    errors: V1_ERRORS,
  },
  {
    method: 'get',
    path: '/v1/jobs/{job_id}',
    operationId: 'getJob',
    tag: 'jobs',
    auth: 'apiKey',
    summary: 'Get a job',
    description:
      'The job, with its result once completed. With `?wait=`, the answer is held until the job ends or the wait is over.',
    query: req.jobPollQuery,
    queryParameters: req.jobPollParameters,
    responses: { 200: { description: 'The job, with its result once completed.', schema: res.jobAnswer } },
    errors: { ...JOB, ...HELD },
  },
  {
    method: 'delete',
    path: '/v1/jobs/{job_id}',
    operationId: 'cancelJob',
    tag: 'jobs',
    auth: 'apiKey',
    summary: 'Cancel a queued job',
    description:
      'Cancels a job that is still `queued`: it is never fetched and nothing is charged. A job already processing or ended answers 409 with its `status`.',
    responses: { 200: { description: 'The cancelled job.', schema: res.jobAnswer } },
    errors: { ...JOB, 409: ['JOB_NOT_CANCELLABLE'] },
  },
  {
    method: 'get',
    path: '/v1/jobs/{job_id}/events',
    operationId: 'streamJobEvents',
    tag: 'jobs',
    auth: 'apiKey',
    summary: "Follow a job's status as Server-Sent Events",
    description:
      "First the job as it is now, then the job again each time its status changes; the stream ends after the job's final status. Every event is an unnamed (`message`) event whose `id` is the job's `updated_at` in microseconds and whose `data` is the job as JSON (the `data` of `getJob`). A comment line (`: keep-alive`) is sent every 15 s.",
    lastEventId: true,
    responses: {
      200: {
        description:
          "Server-Sent Events (`text/event-stream`); the schema is that of each event's `data`, a Job.",
        events: res.job,
      },
      204: {
        description:
          'The `Last-Event-ID` sent is of the final event already: nothing more will come (an EventSource stops reconnecting).',
      },
    },
    errors: { ...JOB, ...HELD },
  },
  {
    method: 'get',
    path: '/v1/jobs/{job_id}/webhooks',
    operationId: 'listWebhookDeliveries',
    tag: 'webhooks',
    auth: 'apiKey',
    summary: "List a job's webhook delivery attempts",
    description:
      "Every attempt to POST the job's end to its webhook, and every redelivery, oldest first: when, the receiver's status or the error, and how long it took.",
    responses: { 200: { description: 'Oldest first.', schema: res.webhookDeliveries } },
    errors: JOB,
  },
  {
    method: 'post',
    path: '/v1/jobs/{job_id}/webhooks/redeliver',
    operationId: 'redeliverWebhook',
    tag: 'webhooks',
    auth: 'apiKey',
    summary: "Send an ended job's webhook again",
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
    operationId: 'getBatch',
    tag: 'batches',
    auth: 'apiKey',
    summary: 'Get a batch',
    description:
      "The batch's counts of jobs per status, and a page of its jobs in request order (results left out: get each with `getJob`).",
    query: req.batchPageQuery,
    queryParameters: req.batchPageParameters,
    responses: { 200: { description: 'The batch.', schema: res.batchAnswer } },
    errors: BATCH,
  },
  {
    method: 'get',
    path: '/v1/batches/{batch_id}/events',
    operationId: 'streamBatchEvents',
    tag: 'batches',
    auth: 'apiKey',
    summary: "Follow a batch's progress as Server-Sent Events",
    description:
      "First the batch's counts per status as they are now, then new counts as its jobs change; the stream ends once none of its jobs is queued or processing. Every event is an unnamed (`message`) event whose `id` is its jobs' latest `updated_at` in microseconds and whose `data` is a BatchSummary as JSON. A comment line (`: keep-alive`) is sent every 15 s.",
    lastEventId: true,
    responses: {
      200: {
        description:
          "Server-Sent Events (`text/event-stream`); the schema is that of each event's `data`, a BatchSummary.",
        events: res.batchSummary,
      },
      204: {
        description:
          'The batch is done and the `Last-Event-ID` sent is of its final counts: nothing more will come (an EventSource stops reconnecting).',
      },
    },
    errors: { ...BATCH, ...HELD },
  },
  {
    method: 'delete',
    path: '/v1/batches/{batch_id}',
    operationId: 'cancelBatch',
    tag: 'batches',
    auth: 'apiKey',
    summary: "Cancel a batch's queued jobs",
    description:
      'Cancels the jobs of the batch that are still `queued` and answers how many; jobs processing or ended are left as they are.',
    responses: { 200: { description: 'How many were cancelled.', schema: res.batchCancelled } },
    errors: BATCH,
  },
];
