import { ScrapeFailure } from '../errors';
import type { ScrapedPage } from '../scraper/scrape-request';
import type { PageResult } from '../store/job-results';

/** The answer of a successful scrape: the sync route's body and a completed job's `result`. */
export interface ScrapeSuccessBody {
  success: true;
  data: ScrapedPage;
  metadata: { elapsed_time: number };
  billing: { charged: number };
}

export interface ScrapeFailureBody {
  success: false;
  error: string;
  code: string;
  metadata: { elapsed_time: number };
  billing: { charged: 0 };
}

export const seconds = (ms: number) => Math.round(ms) / 1000;

export function successBody(page: ScrapedPage, elapsedMs: number, charged: number): ScrapeSuccessBody {
  return { success: true, data: page, metadata: { elapsed_time: seconds(elapsedMs) }, billing: { charged } };
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
    metadata: { elapsed_time: seconds(elapsedMs) },
    billing: { charged: 0 },
  };
}

/** A target slower than the job's time limit ends `timed_out`; every other failure ends `failed`. */
export function statusForFailureCode(code: string): 'failed' | 'timed_out' {
  return code === 'TARGET_TIMEOUT' || code === 'JOB_TIMEOUT' ? 'timed_out' : 'failed';
}
