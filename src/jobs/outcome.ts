import type { z } from 'zod';
import type { scrapeFailure, scrapeSuccess } from '../contract/responses';
import { ScrapeFailure } from '../domain-errors';
import type { JobEnd } from '../metrics/service-metrics';
import type { Config } from '../config';
import type { Engine, Scraped } from '../scraper/scrape-request';
import type { PageResult } from '../db/job-results';

/** The answer of a successful scrape: the sync route's body and a completed job's `result`. */
export type ScrapeSuccessBody = z.input<typeof scrapeSuccess>;

/** POST /v1/scrape's 502: the target could not be scraped. */
export type ScrapeFailureBody = z.input<typeof scrapeFailure>;

export const seconds = (ms: number) => Math.round(ms) / 1000;

/** What a successful scrape costs: a rendered page OMNISCRAPE_PRICE_PER_RENDER, any other the per-scrape price. */
export type Prices = Pick<Config, 'pricePerScrape' | 'pricePerRender'>;

export function successBody({ page, engine }: Scraped, elapsedMs: number, prices: Prices): ScrapeSuccessBody {
  const charged = engine === 'browser' ? prices.pricePerRender : prices.pricePerScrape;
  return {
    success: true,
    data: page,
    // `engine` first: a stored result comes back from jsonb with its keys shortest first, and a job's
    // result answers the same bytes as the sync call.
    metadata: { engine, elapsed_time: seconds(elapsedMs) },
    billing: { charged },
  };
}

/** A success body as a completed job stores it: the page's content apart from the rest (see PageResult). */
export function storedResult(body: ScrapeSuccessBody): PageResult {
  const { content, ...data } = body.data;
  return { json: JSON.stringify({ ...body, data }), content };
}

export function failureBody(failure: ScrapeFailure, elapsedMs: number): ScrapeFailureBody {
  return {
    success: false,
    error: failure.message,
    code: failure.code,
    metadata: { ...(failure.engine && { engine: failure.engine }), elapsed_time: seconds(elapsedMs) },
    billing: { charged: 0 },
  };
}

/** A target slower than the job's time limit ends `timed_out`; every other failure ends `failed`. */
export function statusForFailureCode(code: string): 'failed' | 'timed_out' {
  return code === 'TARGET_TIMEOUT' || code === 'JOB_TIMEOUT' ? 'timed_out' : 'failed';
}

/** How a scrape ended, as its history row records it: the same columns for async jobs and sync scrapes. */
export interface ScrapeOutcome {
  status: 'completed' | 'failed' | 'timed_out';
  target_status_code: number | null;
  error_code: string | null;
  error_message: string | null;
  charged: number;
  result_bytes: number | null;
  elapsed_ms: number | null;
  /** The engine that produced the outcome; null when no scrape ran (a lost job). */
  engine: Engine | null;
}

/** The outcome the history records for a scrape's answer (what the sync route sends, a job stores). */
export function outcomeOf(body: ScrapeSuccessBody | ScrapeFailureBody): ScrapeOutcome {
  const elapsedMs = Math.round(body.metadata.elapsed_time * 1000);
  if (!body.success) return failedOutcome(body.code, body.error, elapsedMs, body.metadata.engine ?? null);
  return {
    status: 'completed',
    target_status_code: body.data.status_code,
    error_code: null,
    error_message: null,
    charged: body.billing.charged,
    result_bytes: Buffer.byteLength(body.data.content),
    elapsed_ms: elapsedMs,
    engine: body.metadata.engine ?? null,
  };
}

/** A recorded outcome as the metrics count a job's end. */
export const jobEndOf = (
  kind: JobEnd['kind'],
  outcome: Pick<ScrapeOutcome, 'status' | 'error_code' | 'target_status_code' | 'engine'>,
  startedAt: Date | null,
): JobEnd => ({
  kind,
  status: outcome.status,
  errorCode: outcome.error_code,
  targetStatusCode: outcome.target_status_code,
  startedAt,
  engine: outcome.engine,
});

/** The outcome of a job whose workers kept being lost: no scrape answered, so no time is recorded. */
export const lostJobOutcome = (message: string): ScrapeOutcome =>
  failedOutcome('JOB_TIMEOUT', message, null, null);

function failedOutcome(
  code: string,
  message: string,
  elapsedMs: number | null,
  engine: Engine | null,
): ScrapeOutcome {
  return {
    status: statusForFailureCode(code),
    target_status_code: null,
    error_code: code,
    error_message: message,
    charged: 0,
    result_bytes: null,
    elapsed_ms: elapsedMs,
    engine,
  };
}
