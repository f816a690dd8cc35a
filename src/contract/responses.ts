import { z } from 'zod';
import { JOB_STATUSES, SCRAPE_FAILURE_CODES } from './errors';

const EXAMPLE_ID = '0b9f2c3e-5d1a-4f7e-9c8b-2a6d4e1f3c5b';
const EXAMPLE_TIME = '2026-11-30T08:00:00.000Z';
const id = z.uuid().meta({ examples: [EXAMPLE_ID] });
const isoTime = z.iso.datetime().meta({ examples: [EXAMPLE_TIME] });
const elapsed = z.strictObject({
  elapsed_time: z.number().meta({ description: 'Seconds the scrape took.' }),
});
const engine = z
  .enum(['http', 'browser'])
  .meta({ description: 'Which engine produced the page: the HTTP client, or headless Chromium.' });

/** The answer of a successful scrape: POST /v1/scrape's 200 and a completed job's `result`. */
export const scrapeSuccess = z
  .strictObject({
    success: z.literal(true),
    data: z.strictObject({
      content: z.string(),
      status_code: z.int().meta({ description: "The target's HTTP status." }),
      headers: z.record(z.string(), z.string()),
      final_url: z.string().meta({ description: 'The URL after redirects.' }),
      screenshot: z
        .string()
        .optional()
        .meta({ description: 'A PNG of the rendered page, base64 (only with `screenshot: true`).' }),
    }),
    metadata: elapsed.extend({ engine: engine.optional() }),
    billing: z.strictObject({ charged: z.number() }),
  })
  .meta({
    id: 'ScrapeResult',
    examples: [
      {
        success: true,
        data: {
          content: '# Example Domain',
          status_code: 200,
          headers: { 'content-type': 'text/html' },
          final_url: 'https://example.com/',
        },
        metadata: { engine: 'http', elapsed_time: 0.412 },
        billing: { charged: 1 },
      },
    ],
  });

/** POST /v1/scrape's 502: the target could not be scraped (nothing is charged). */
export const scrapeFailure = z
  .strictObject({
    success: z.literal(false),
    error: z.string(),
    code: z.enum(SCRAPE_FAILURE_CODES),
    metadata: elapsed.extend({ engine: engine.optional() }),
    billing: z.strictObject({ charged: z.literal(0) }),
  })
  .meta({
    id: 'ScrapeFailure',
    examples: [
      {
        success: false,
        error: 'The target did not answer within the timeout.',
        code: 'TARGET_TIMEOUT',
        metadata: { elapsed_time: 30.001 },
        billing: { charged: 0 },
      },
    ],
  });

/** The public view of one job. */
export const job = z
  .strictObject({
    job_id: id,
    status: z.enum(JOB_STATUSES),
    url: z.string(),
    created_at: isoTime,
    updated_at: isoTime,
    error: z.string().optional().meta({ description: 'Why a job failed, timed out or was cancelled.' }),
    code: z
      .string()
      .optional()
      .meta({
        description: `A scrape failure code (${SCRAPE_FAILURE_CODES.join(', ')}), JOB_TIMEOUT, CANCELLED, INTERNAL_ERROR, or RESULT_EXPIRED for a completed job whose result was purged.`,
      }),
    result_expired_at: isoTime.optional(),
    result: scrapeSuccess.optional().meta({ description: "A completed job's result, while it is kept." }),
  })
  .meta({
    id: 'Job',
    examples: [
      {
        job_id: EXAMPLE_ID,
        status: 'failed',
        url: 'https://example.com/',
        created_at: EXAMPLE_TIME,
        updated_at: EXAMPLE_TIME,
        error: 'The target could not be reached.',
        code: 'TARGET_UNREACHABLE',
      },
    ],
  });

export const jobAnswer = z.strictObject({ success: z.literal(true), data: job }).meta({ id: 'JobAnswer' });

export const jobPage = z
  .strictObject({
    success: z.literal(true),
    data: z.array(job).meta({ description: 'Newest first.' }),
    next_cursor: z.string().nullable().meta({ description: 'Where the next page starts; null on the last.' }),
  })
  .meta({ id: 'JobPage' });

export const jobAccepted = z
  .strictObject({
    success: z.literal(true),
    job_id: id,
    status: z.enum(JOB_STATUSES),
    poll: z.string().meta({ examples: ['/v1/jobs/0b9f2c3e-5d1a-4f7e-9c8b-2a6d4e1f3c5b'] }),
  })
  .meta({
    id: 'JobAccepted',
    examples: [{ success: true, job_id: EXAMPLE_ID, status: 'queued', poll: `/v1/jobs/${EXAMPLE_ID}` }],
  });

export const batchAccepted = z
  .strictObject({
    success: z.literal(true),
    batch_id: id,
    job_ids: z.array(id).meta({ description: 'In request order.' }),
    poll: z.string(),
  })
  .meta({
    id: 'BatchAccepted',
    examples: [
      { success: true, batch_id: EXAMPLE_ID, job_ids: [EXAMPLE_ID], poll: `/v1/batches/${EXAMPLE_ID}` },
    ],
  });

const statusCounts = z.strictObject(
  Object.fromEntries(JOB_STATUSES.map((s) => [s, z.int().nonnegative()])) as Record<
    (typeof JOB_STATUSES)[number],
    z.ZodInt
  >,
);

/** A batch's counts per status: GET /v1/batches/{id} and its events. */
export const batchSummary = z
  .strictObject({ batch_id: id, created_at: isoTime, total: z.int(), counts: statusCounts })
  .meta({ id: 'BatchSummary' });

export const batchAnswer = z
  .strictObject({
    success: z.literal(true),
    data: z.strictObject({
      ...batchSummary.shape,
      jobs: z.array(job).meta({ description: 'A page of its jobs, in request order, results left out.' }),
      next_cursor: z.string().nullable(),
    }),
  })
  .meta({ id: 'BatchAnswer' });

export const batchCancelled = z
  .strictObject({
    success: z.literal(true),
    batch_id: id,
    cancelled: z.int().meta({ description: 'How many queued jobs were cancelled.' }),
  })
  .meta({ id: 'BatchCancelled', examples: [{ success: true, batch_id: EXAMPLE_ID, cancelled: 3 }] });

export const webhookDelivery = z
  .strictObject({
    attempt: z.int(),
    redelivery: z.boolean(),
    succeeded: z.boolean(),
    status_code: z.int().nullable(),
    error: z.string().nullable(),
    duration_ms: z.number(),
    created_at: isoTime,
  })
  .meta({
    id: 'WebhookDelivery',
    examples: [
      {
        attempt: 1,
        redelivery: false,
        succeeded: true,
        status_code: 200,
        error: null,
        duration_ms: 42,
        created_at: EXAMPLE_TIME,
      },
    ],
  });

export const webhookDeliveries = z
  .strictObject({
    success: z.literal(true),
    data: z.array(webhookDelivery).meta({ description: 'Oldest first.' }),
  })
  .meta({ id: 'WebhookDeliveries' });

export const redeliveryAccepted = z
  .strictObject({ success: z.literal(true), job_id: id })
  .meta({ id: 'RedeliveryAccepted' });

export const health = z.strictObject({ success: z.literal(true), status: z.literal('ok') });
export const ready = z.strictObject({ success: z.literal(true), status: z.literal('ready') });

/** GET /dashboard/data: the operator page's figures (documented on the page itself). */
export const dashboardData = z.strictObject({ success: z.literal(true), data: z.looseObject({}) });
