import type { Job } from 'pg-boss';
import type { ServiceContext } from '../context';
import { ScrapeFailure } from '../domain-errors';
import type { MemoryBudget } from '../scraper/memory-budget';
import type { ScrapeJobRow } from '../db/schema';
import type { PageResult } from '../db/job-results';
import { handBackScrapeJob, timeOutLostScrapeJob } from '../db/scrape-jobs';
import type { ClaimedScrape } from './claim-scrape-jobs';
import {
  failureBody,
  lostJobOutcome,
  outcomeOf,
  storedResult,
  successBody,
  type ScrapeFailureBody,
  type ScrapeOutcome,
  type ScrapeSuccessBody,
} from './outcome';
import { attemptOf, type ScrapeJobData } from './queue';
import type { ScrapeSettler } from './settle-scrape-jobs';
import { enqueueWebhooksOf } from './webhook-trigger';

// Which status changes a job may make, and which function makes each: db/job-status.ts.

/**
 * How many attempts of a job may start before it ends timed_out (JOB_TIMEOUT) instead: each
 * attempt beyond the first means the worker holding the job was lost. pg-boss's own retry limit
 * (ensureQueues) is a higher backstop.
 */
export const MAX_ATTEMPTS = 3;

/** Why a scrape was interrupted by its own worker's shutdown (it is handed back, not failed). */
export class HandedBack extends Error {
  constructor(jobId: string) {
    super(`job ${jobId} was handed back to the queue by a stopping worker`);
    this.name = 'HandedBack';
  }
}

/** A stopping worker's unfinished job goes back to `queued`; the interrupted attempt is not counted. */
async function handBack(ctx: ServiceContext, job: ScrapeJobRow): Promise<void> {
  if (await handBackScrapeJob(ctx.store.db, job.id, job.attempts))
    ctx.statusNotices.announce('changed', [job.id]);
}

/**
 * Runs one claimed scrape job and settles it. Throws for infrastructure errors and hand-backs,
 * which pg-boss retries; every scrape outcome, good or bad, is recorded and returned (undefined
 * when another attempt owns the job now, so this one recorded nothing).
 */
export async function processScrapeJob(
  ctx: ServiceContext,
  settler: ScrapeSettler,
  budget: MemoryBudget,
  { job, row }: ClaimedScrape,
  { claim, shutdown }: { claim: AbortSignal; shutdown: AbortSignal },
): Promise<ScrapeOutcome | undefined> {
  const settle = async (outcome: ScrapeOutcome, result?: PageResult) => {
    const applied = await settler.add({
      attempt: attemptOf(job),
      apiKeyId: row.api_key_id,
      finish: {
        id: row.id,
        attempt: row.attempts,
        ...outcome,
        result_expires_at: result ? new Date(Date.now() + ctx.config.resultTtlSeconds * 1000) : null,
      },
      result,
      webhook: job.data.webhook === true,
    });
    return applied ? outcome : undefined;
  };
  if (row.attempts > MAX_ATTEMPTS) {
    return settle(
      lostJobOutcome(`The job could not finish: the workers processing it were lost ${MAX_ATTEMPTS} times.`),
    );
  }
  const began = performance.now();
  // The page's memory is held from its first byte read until its result is stored.
  const hold = budget.hold();
  try {
    let body: ScrapeSuccessBody | ScrapeFailureBody;
    try {
      const scraped = await ctx.scraper.scrape(job.data.request, {
        signal: AbortSignal.any([claim, shutdown]),
        hold,
        owner: row.api_key_id,
      });
      body = successBody(scraped, performance.now() - began, ctx.config);
    } catch (err) {
      // The claim was taken away (another worker owns the job now): leave the outcome to it.
      if (claim.aborted) return undefined;
      if (shutdown.aborted) {
        // Back to `queued` before pg-boss sees the throw and requeues it, so no other worker can
        // claim the job while its history still says this one holds it.
        await handBack(ctx, row);
        throw new HandedBack(row.id);
      }
      if (!(err instanceof ScrapeFailure)) throw err;
      body = failureBody(err, performance.now() - began);
    }
    return await settle(outcomeOf(body), body.success ? storedResult(body) : undefined);
  } finally {
    hold.release();
  }
}

/**
 * A scrape pg-boss gave up on after its retries (its workers kept vanishing). pg-boss dead-letters
 * a copy under a new id, so the history row is found through `data.jobId`.
 */
export async function processLostScrapeJob(ctx: ServiceContext, job: Job<ScrapeJobData>): Promise<void> {
  const message =
    'The job could not finish: pg-boss gave up on it after the workers processing it kept being lost.';
  const ended = await timeOutLostScrapeJob(ctx.store.db, job.data.jobId, message);
  if (ended) {
    ctx.statusNotices.announce('ended', [job.data.jobId]);
    ctx.metrics.jobsEnded({ kind: 'async', status: 'timed_out', errorCode: 'JOB_TIMEOUT' }, 1);
    ctx.logger.warn(
      { jobId: job.data.jobId, requestId: ended.request_id },
      'pg-boss gave up on a job whose workers kept being lost; it ended timed_out',
    );
    if (job.data.webhook) await enqueueWebhooksOf(ctx, [job.data.jobId]);
  }
}
