import { sql } from 'kysely';
import type { Job } from 'pg-boss';
import type { ServiceContext } from '../context';
import { ScrapeFailure } from '../errors';
import type { Db } from '../store/database';
import { insertJobResult } from '../store/job-results';
import { concurrencyLimitOfJobKey, countProcessing, customConcurrencyLimits, lockKeyForLimits, recordSuccessfulScrape } from '../store/key-limits';
import { transitionScrapeJob, type ScrapeJobRow } from '../store/scrape-jobs';
import { statusForFailureCode, successBody } from './outcome';
import { listenForNotifications } from '../store/notification-listener';
import { JOBS_QUEUED_CHANNEL } from '../store/scrape-jobs';
import { ClaimLoop } from './claim-loop';
import { LOST_SCRAPE_QUEUE, SCRAPE_QUEUE, type ScrapeJobData } from './queue';

/** An idle worker looks for work this often even without a NOTIFY (retries are not announced). */
const IDLE_POLL_MS = 1_000;

/**
 * The status rules of an async job, all applied through transitionScrapeJob:
 *   queued → processing                  a worker claimed it (again, after a lost worker)
 *   processing → queued                  a stopping worker handed it back unfinished
 *   processing → completed               the target answered (any HTTP status); result stored
 *   processing → failed | timed_out     the scrape could not complete
 *   queued | processing → timed_out      its workers were lost MAX_ATTEMPTS times (JOB_TIMEOUT)
 */
export const MAX_ATTEMPTS = 3;

/** Why a scrape was interrupted by its own worker's shutdown (it is handed back, not failed). */
export class HandedBack extends Error {
  constructor(jobId: string) {
    super(`job ${jobId} was handed back to the queue by a stopping worker`);
    this.name = 'HandedBack';
  }
}

/** How long a job waits before it is tried again when its key's sync scrapes fill the key's limit. */
const KEY_BUSY_RETRY_SECONDS = 1;

/**
 * Claims the job for this attempt, within its key's concurrency limit: `started` with the row, or
 * `ended` when it already ended (its result is written once), or `keyBusy` when the key's other
 * scrapes (sync ones, which pg-boss's group limit does not see) fill its limit right now.
 */
async function startAttempt(
  db: Db,
  jobId: string,
  defaultConcurrency: number,
): Promise<{ outcome: 'started'; row: ScrapeJobRow } | { outcome: 'ended' } | { outcome: 'keyBusy' }> {
  return db.transaction().execute(async (trx) => {
    const key = await concurrencyLimitOfJobKey(trx, jobId);
    if (!key) return { outcome: 'ended' as const };
    await lockKeyForLimits(trx, key.apiKeyId);
    if ((await countProcessing(trx, key.apiKeyId, jobId)) >= (key.limit ?? defaultConcurrency)) {
      await transitionScrapeJob(trx, jobId, ['processing'], 'queued'); // a taken-over job waits as queued
      return { outcome: 'keyBusy' as const };
    }
    const row = await transitionScrapeJob(trx, jobId, ['queued', 'processing'], 'processing', {
      started_at: sql<Date>`coalesce(started_at, now())`,
      attempts: sql<number>`attempts + 1`,
    });
    return row ? { outcome: 'started' as const, row } : { outcome: 'ended' as const };
  });
}

async function finishWithPage(ctx: ServiceContext, job: ScrapeJobRow, body: ReturnType<typeof successBody>): Promise<void> {
  const expiresAt = new Date(Date.now() + ctx.config.resultTtlSeconds * 1000);
  await ctx.store.db.transaction().execute(async (trx) => {
    const done = await transitionScrapeJob(
      trx,
      job.id,
      ['processing'],
      'completed',
      {
        finished_at: new Date(),
        target_status_code: body.data.status_code,
        charged: body.billing.charged,
        result_bytes: Buffer.byteLength(body.data.content),
        elapsed_ms: Math.round(body.metadata.elapsed_time * 1000),
        result_expires_at: expiresAt,
      },
      job.attempts,
    );
    if (done) await insertJobResult(trx, job.id, body, expiresAt);
    return done;
  }).then(async (done) => {
    if (done) await recordSuccessfulScrape(ctx.store.db, job.api_key_id).catch((err) => ctx.logger.warn({ err: err.message }, 'could not count a successful scrape'));
  });
}

interface FailureOutcome {
  code: string;
  message: string;
  elapsedMs: number | null;
}

/** Ends a job failed or timed_out; `attempt` fences it to the attempt that reached this outcome. */
async function finishWithFailure(db: Db, jobId: string, outcome: FailureOutcome, from: ScrapeJobRow['status'][], attempt?: number): Promise<void> {
  await transitionScrapeJob(
    db,
    jobId,
    from,
    statusForFailureCode(outcome.code),
    {
      finished_at: new Date(),
      error_code: outcome.code,
      error_message: outcome.message,
      charged: 0,
      elapsed_ms: outcome.elapsedMs === null ? null : Math.round(outcome.elapsedMs),
    },
    attempt,
  );
}

/** A stopping worker's unfinished job goes back to `queued`; the interrupted attempt is not counted. */
async function handBack(db: Db, job: ScrapeJobRow): Promise<void> {
  await transitionScrapeJob(db, job.id, ['processing'], 'queued', { attempts: sql<number>`greatest(attempts - 1, 0)` }, job.attempts);
}

/**
 * Handles one claimed scrape job. Throws for infrastructure errors and hand-backs, which pg-boss
 * retries; every scrape outcome, good or bad, is recorded and returns normally.
 */
export async function processScrapeJob(
  ctx: ServiceContext,
  job: Job<ScrapeJobData>,
  { claim, shutdown }: { claim: AbortSignal; shutdown: AbortSignal },
): Promise<void> {
  const jobId = job.data.jobId;
  const attempt = await startAttempt(ctx.store.db, jobId, ctx.config.defaultConcurrency);
  if (attempt.outcome === 'ended') return;
  if (attempt.outcome === 'keyBusy') {
    // Wait its turn: the same job again shortly, in the same group (this pg-boss job completes).
    await ctx.boss.send(SCRAPE_QUEUE, job.data, {
      startAfter: KEY_BUSY_RETRY_SECONDS,
      ...(job.groupId ? { group: { id: job.groupId, ...(job.groupTier ? { tier: job.groupTier } : {}) } } : {}),
    });
    return;
  }
  const row = attempt.row;
  if (row.attempts > MAX_ATTEMPTS) {
    const message = `The job could not finish: the workers processing it were lost ${MAX_ATTEMPTS} times.`;
    await finishWithFailure(ctx.store.db, jobId, { code: 'JOB_TIMEOUT', message, elapsedMs: null }, ['processing'], row.attempts);
    return;
  }
  const began = performance.now();
  try {
    const page = await ctx.scraper.scrape(job.data.request, AbortSignal.any([claim, shutdown]));
    await finishWithPage(ctx, row, successBody(page, performance.now() - began, ctx.config.pricePerScrape));
  } catch (err) {
    // The claim was taken away (another worker owns the job now): leave the outcome to it.
    if (claim.aborted) return;
    if (shutdown.aborted) {
      // Back to `queued` before pg-boss sees the throw and requeues it, so no other worker can
      // claim the job while its history still says this one holds it.
      await handBack(ctx.store.db, row);
      throw new HandedBack(jobId);
    }
    if (!(err instanceof ScrapeFailure)) throw err;
    const elapsedMs = performance.now() - began;
    await finishWithFailure(ctx.store.db, jobId, { code: err.code, message: err.message, elapsedMs }, ['processing'], row.attempts);
  }
}

/**
 * A scrape pg-boss gave up on after its retries (its workers kept vanishing). pg-boss dead-letters
 * a copy under a new id, so the history row is found through `data.jobId`.
 */
export async function processLostScrapeJob(ctx: ServiceContext, job: Job<ScrapeJobData>): Promise<void> {
  const message = 'The job could not finish: pg-boss gave up on it after the workers processing it kept being lost.';
  await finishWithFailure(ctx.store.db, job.data.jobId, { code: 'JOB_TIMEOUT', message, elapsedMs: null }, ['queued', 'processing']);
}

export interface ScrapeWorker {
  stop(): Promise<void>;
}

/**
 * Runs the scrape workers of this process: a claim loop over the scrape queue, woken by the
 * submit NOTIFY, and the handler of pg-boss's dead-letter queue. `stop` stops claiming at once,
 * lets in-flight scrapes finish for up to OMNISCRAPE_SHUTDOWN_GRACE_SECONDS, then interrupts the
 * rest and hands them back to the queue for another worker: a stop never fails a job.
 */
export async function startScrapeWorker(ctx: ServiceContext, databaseUrl: string): Promise<ScrapeWorker> {
  const { boss, config, logger } = ctx;
  const groupLimits = keyGroupLimits(ctx);
  const loop = new ClaimLoop<ScrapeJobData>(boss, logger, {
    queue: SCRAPE_QUEUE,
    concurrency: config.workerConcurrency,
    idlePollMs: IDLE_POLL_MS,
    heartbeatSeconds: config.heartbeatSeconds,
    fetchOptions: () => groupLimits.current(),
    handle: async (job, signals) => {
      try {
        await processScrapeJob(ctx, job, signals);
      } catch (err) {
        if (err instanceof HandedBack) logger.info({ jobId: job.data.jobId }, 'handed back an unfinished job');
        else logger.error({ err, jobId: job.data.jobId }, 'scrape job handler failed; pg-boss will retry it');
        throw err;
      }
    },
  });
  const listener = listenForNotifications(databaseUrl, JOBS_QUEUED_CHANNEL, () => loop.wake(), logger);
  loop.start();
  await boss.work<ScrapeJobData>(LOST_SCRAPE_QUEUE, { pollingIntervalSeconds: 5 }, async ([job]) => {
    if (job) await processLostScrapeJob(ctx, job);
  });
  return {
    async stop() {
      await boss.offWork(LOST_SCRAPE_QUEUE, { wait: false });
      await loop.stop(config.shutdownGraceSeconds * 1000);
      await listener.stop();
      await boss.offWork(LOST_SCRAPE_QUEUE, { wait: true });
    },
  };
}

const GROUP_TIERS_REFRESH_MS = 5_000;

/**
 * pg-boss group concurrency for the fetch: one group per key, limited to the key's concurrency.
 * Keys with a limit of their own carry it as their tier name, so the tiers are simply every
 * distinct custom limit (re-read every few seconds; new keys and limits apply to new jobs).
 */
function keyGroupLimits(ctx: ServiceContext) {
  let tiers: Record<string, number> = {};
  let readAt = 0;
  return {
    async current() {
      if (Date.now() - readAt > GROUP_TIERS_REFRESH_MS) {
        try {
          const limits = await customConcurrencyLimits(ctx.store.db);
          tiers = Object.fromEntries(limits.map((limit) => [String(limit), limit]));
          readAt = Date.now();
        } catch {
          // Postgres away: keep the last tiers; the fetch itself will report the outage.
        }
      }
      return { groupConcurrency: { default: ctx.config.defaultConcurrency, tiers } };
    },
  };
}
