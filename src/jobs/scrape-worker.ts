import { sql } from 'kysely';
import type { Job } from 'pg-boss';
import type { ServiceContext } from '../context';
import { ScrapeFailure } from '../errors';
import type { Db } from '../store/database';
import { insertJobResult } from '../store/job-results';
import { transitionScrapeJob, type ScrapeJobRow } from '../store/scrape-jobs';
import { failureBody, statusForFailureCode, successBody } from './outcome';
import { LOST_SCRAPE_QUEUE, SCRAPE_QUEUE, TAKEOVER_ALLOWANCE_SECONDS, type ScrapeJobData } from './queue';

/**
 * The status rules of an async job, all applied through transitionScrapeJob:
 *   queued → processing                  a worker claimed it (again, after a lost worker)
 *   processing → completed               the target answered (any HTTP status); result stored
 *   processing → failed | timed_out     the scrape could not complete
 *   queued | processing → timed_out      the time limit passed before a worker could finish it
 * A job's time limit is its `timeout` plus TAKEOVER_ALLOWANCE_SECONDS from its first start.
 */

/** Claims the job for this attempt; undefined when it already ended (its result is written once). */
async function startAttempt(db: Db, jobId: string): Promise<ScrapeJobRow | undefined> {
  return transitionScrapeJob(db, jobId, ['queued', 'processing'], 'processing', {
    started_at: sql<Date>`coalesce(started_at, now())`,
    attempts: sql<number>`attempts + 1`,
  });
}

async function finishWithPage(ctx: ServiceContext, job: ScrapeJobRow, body: ReturnType<typeof successBody>): Promise<void> {
  const expiresAt = new Date(Date.now() + ctx.config.resultTtlSeconds * 1000);
  await ctx.store.db.transaction().execute(async (trx) => {
    const done = await transitionScrapeJob(trx, job.id, ['processing'], 'completed', {
      finished_at: new Date(),
      target_status_code: body.data.status_code,
      charged: body.billing.charged,
      result_bytes: Buffer.byteLength(body.data.content),
      elapsed_ms: Math.round(body.metadata.elapsed_time * 1000),
      result_expires_at: expiresAt,
    });
    if (done) await insertJobResult(trx, job.id, body, expiresAt);
  });
}

async function finishWithFailure(db: Db, jobId: string, code: string, message: string, elapsedMs: number | null, from: ScrapeJobRow['status'][] = ['processing']): Promise<void> {
  await transitionScrapeJob(db, jobId, from, statusForFailureCode(code), {
    finished_at: new Date(),
    error_code: code,
    error_message: message,
    charged: 0,
    elapsed_ms: elapsedMs === null ? null : Math.round(elapsedMs),
  });
}

/** Handles one claimed scrape job. Throws only for infrastructure errors, which pg-boss retries. */
export async function processScrapeJob(ctx: ServiceContext, job: Job<ScrapeJobData>): Promise<void> {
  const jobId = job.data.jobId;
  const row = await startAttempt(ctx.store.db, jobId);
  if (!row) return;
  const request = job.data.request;
  const startedAt = row.started_at instanceof Date ? row.started_at : new Date(row.started_at ?? Date.now());
  const remainingMs = startedAt.getTime() + (request.timeout + TAKEOVER_ALLOWANCE_SECONDS) * 1000 - Date.now();
  if (remainingMs <= 0) {
    await finishWithFailure(ctx.store.db, jobId, 'JOB_TIMEOUT', 'The job could not finish within its time limit (its worker was lost).', null);
    return;
  }
  const began = performance.now();
  try {
    const timeout = Math.min(request.timeout, remainingMs / 1000);
    const page = await ctx.scraper.scrape({ ...request, timeout }, job.signal);
    await finishWithPage(ctx, row, successBody(page, performance.now() - began, ctx.config.pricePerScrape));
  } catch (err) {
    // The claim was taken away (another worker owns the job now): leave the outcome to it.
    if (job.signal?.aborted) return;
    if (!(err instanceof ScrapeFailure)) throw err;
    const body = failureBody(err, performance.now() - began);
    await finishWithFailure(ctx.store.db, jobId, body.code, body.error, performance.now() - began);
  }
}

/**
 * A scrape pg-boss gave up on after its retries (its workers kept vanishing). pg-boss dead-letters
 * a copy under a new id, so the history row is found through `data.jobId`.
 */
export async function processLostScrapeJob(ctx: ServiceContext, job: Job<ScrapeJobData>): Promise<void> {
  await finishWithFailure(
    ctx.store.db,
    job.data.jobId,
    'JOB_TIMEOUT',
    'The job could not finish within its time limit: the workers processing it were lost.',
    null,
    ['queued', 'processing'],
  );
}

export interface ScrapeWorker {
  stop(): Promise<void>;
}

/** Registers the scrape handlers with pg-boss; `stop` stops claiming and waits for in-flight jobs. */
export async function startScrapeWorker(ctx: ServiceContext): Promise<ScrapeWorker> {
  const { boss, config, logger } = ctx;
  const log = (job: Job<unknown>, err: unknown) => logger.error({ err, jobId: job.id }, 'scrape job handler failed');
  await boss.work<ScrapeJobData>(
    SCRAPE_QUEUE,
    { localConcurrency: config.workerConcurrency, batchSize: 1, pollingIntervalSeconds: 2, notifyPollingIntervalSeconds: 10 },
    async ([job]) => {
      if (!job) return;
      try {
        await processScrapeJob(ctx, job);
      } catch (err) {
        log(job, err);
        throw err;
      }
    },
  );
  await boss.work<ScrapeJobData>(LOST_SCRAPE_QUEUE, { pollingIntervalSeconds: 5 }, async ([job]) => {
    if (job) await processLostScrapeJob(ctx, job);
  });
  return {
    async stop() {
      await boss.offWork(SCRAPE_QUEUE, { wait: true });
      await boss.offWork(LOST_SCRAPE_QUEUE, { wait: true });
    },
  };
}
