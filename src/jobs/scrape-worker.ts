import { fromKysely, type FetchOptions, type Job, type JobAttempt } from 'pg-boss';
import type { ServiceContext } from '../context';
import { ScrapeFailure } from '../errors';
import type { Db, ScrapeJobRow } from '../store/schema';
import { customConcurrencyLimits, recordSuccessfulScrapes } from '../store/key-limits';
import {
  CLAIM_TRANSACTION_SETTINGS,
  isRetryableWithFewerRows,
  transactionWithSettings,
} from '../store/transactions';
import { listenForNotifications } from '../store/notification-listener';
import { handBackScrapeJob, requeueScrapeJobs, timeOutLostScrapeJob } from '../store/scrape-jobs';
import { JOBS_QUEUED_CHANNEL } from '../store/statements/announce-queued-jobs';
import { finishKey, finishScrapeJobs, type JobFinish } from '../store/statements/finish-scrape-jobs';
import { lockAndCountKeySlots } from '../store/statements/lock-and-count-key-slots';
import { startScrapeAttempts } from '../store/statements/start-scrape-attempts';
import { touchScrapeJobs } from '../store/statements/touch-scrape-jobs';
import { MemoryBudget } from '../scraper/memory-budget';
import type { PageResult } from '../store/job-results';
import { ClaimLoop } from './claim-loop';
import { slotLeases } from './key-limits';
import { GroupCommit } from './group-commit';
import { statusForFailureCode, storedResult, successBody } from './outcome';
import { LOST_SCRAPE_QUEUE, SCRAPE_QUEUE, type ScrapeJobData } from './queue';

/** An idle worker looks for work this often even without a NOTIFY (retries are not announced). */
const IDLE_POLL_MS = 1_000;

/**
 * The status rules of an async job, all applied by the status-change statements of
 * store/scrape-jobs.ts (transitionScrapeJob, transitionScrapeJobs, finishScrapeJobs):
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
/** Most jobs settled by one transaction. */
const MAX_SETTLE_BATCH = 200;

/** A job this worker holds: the pg-boss attempt and the history row it started. */
export interface ClaimedScrape {
  job: Job<ScrapeJobData>;
  row: ScrapeJobRow;
}

/**
 * Claims up to `max` scrape jobs in one transaction: pg-boss `fetch` (one group per key, each
 * limited to the key's concurrency) and the start of each job's attempt in its history row, within
 * its key's concurrency limit, which also counts the key's sync scrapes (pg-boss's group limit sees
 * only the queue). A job whose key is full right now waits: a copy is queued for a second later and
 * this attempt completes. A job that already ended (its outcome was written before a lost worker's
 * claim lapsed) just completes. One transaction per batch keeps each key's limit lock held for one
 * commit per batch rather than one per job.
 */
async function claimScrapeJobs(
  ctx: ServiceContext,
  max: number,
  fetchOptions: Omit<FetchOptions, 'batchSize'>,
): Promise<{ claimed: ClaimedScrape[]; fetched: number; capped: boolean; busyKeys: string[] }> {
  const { boss } = ctx;
  return transactionWithSettings(ctx.store.db, CLAIM_TRANSACTION_SETTINGS, async (trx) => {
    const db = fromKysely(trx);
    const jobs = await boss.fetch<ScrapeJobData>(SCRAPE_QUEUE, { ...fetchOptions, batchSize: max, db });
    if (jobs.length === 0) return { claimed: [], fetched: 0, capped: false, busyKeys: [] };
    const jobIds = jobs.map((j) => j.data.jobId);
    // Every job is queued in its key's pg-boss group (submitScrapeJob), so the group names the key.
    const keyOf = new Map(jobs.flatMap((j) => (j.groupId ? [[j.data.jobId, j.groupId] as const] : [])));
    const keyIds = [...new Set(keyOf.values())];
    const keys = await lockAndCountKeySlots(trx, keyIds, jobIds, slotLeases(ctx.config));
    const admitted: Job<ScrapeJobData>[] = [];
    const busy: Job<ScrapeJobData>[] = [];
    for (const job of jobs) {
      const key = keys.get(keyOf.get(job.data.jobId) ?? '');
      if (key && key.processing >= (key.limit ?? ctx.config.defaultConcurrency)) busy.push(job);
      else {
        if (key) key.processing++;
        admitted.push(job);
      }
    }
    const rows = await startScrapeAttempts(
      trx,
      admitted.map((j) => j.data.jobId),
    );
    const rowOf = new Map(rows.map((r) => [r.id, r]));
    const ended = admitted.filter((j) => !rowOf.has(j.data.jobId));
    if (busy.length > 0) {
      // A taken-over job waits as queued; each waits its turn as a copy in the same group.
      await requeueScrapeJobs(
        trx,
        busy.map((j) => j.data.jobId),
      );
      await boss.insert(
        SCRAPE_QUEUE,
        busy.map((j) => ({
          data: j.data,
          // Its own round: with priority 0 it would sort ahead of every round being served.
          priority: j.data.priority ?? 0,
          startAfter: KEY_BUSY_RETRY_SECONDS,
          ...(j.groupId ? { group: { id: j.groupId, ...(j.groupTier ? { tier: j.groupTier } : {}) } } : {}),
        })),
        { db },
      );
    }
    const settled = [...ended, ...busy];
    if (settled.length > 0) await boss.complete(SCRAPE_QUEUE, settled.map(attemptOf), null, { db });
    const claimed = admitted.flatMap((job) => {
      const row = rowOf.get(job.data.jobId);
      return row ? [{ job, row }] : [];
    });
    return {
      claimed,
      fetched: jobs.length,
      capped: [...keys.values()].some(
        (key) => key.processing >= (key.limit ?? ctx.config.defaultConcurrency),
      ),
      busyKeys: [...new Set(busy.map((j) => keyOf.get(j.data.jobId)!))],
    };
  });
}

/**
 * Keys found full at a claim are left out of this worker's fetches for as long as their jobs wait
 * (pg-boss `ignoreGroups`), so the next claim goes to other keys' jobs instead of fetching the busy
 * key's backlog again one job at a time.
 */
class BusyKeys {
  readonly #until = new Map<string, number>();

  add(keys: string[]): void {
    for (const key of keys) this.#until.set(key, Date.now() + KEY_BUSY_RETRY_SECONDS * 1000);
  }

  fetchOption(): { ignoreGroups?: string[] } {
    const now = Date.now();
    for (const [key, until] of this.#until) if (until <= now) this.#until.delete(key);
    return this.#until.size > 0 ? { ignoreGroups: [...this.#until.keys()] } : {};
  }
}

const attemptOf = (job: Job<unknown>): JobAttempt => ({ id: job.id, retryCount: job.retryCount });

/** One claimed job's end: its history outcome (and result), and its pg-boss attempt to complete. */
interface Settlement {
  attempt: JobAttempt;
  apiKeyId: string;
  finish: JobFinish;
  /** The result of a completed job. */
  result?: PageResult;
}

/**
 * Settles finished jobs by group commit (see GroupCommit): the history outcomes, the results and
 * the pg-boss completions of a whole batch in one transaction, so a job's outcome and its
 * completion in the queue commit together. Successful scrapes are counted against their keys'
 * quotas right after, in one statement per batch. A batch that fails on what one job holds is
 * settled again job by job, so one bad result cannot have every other job of its batch retried.
 */
function scrapeSettler(ctx: ServiceContext): GroupCommit<Settlement, boolean> {
  const { db } = ctx.store;
  return new GroupCommit<Settlement, boolean>(
    async (batch) => {
      let applied = new Set<string>();
      const finished = (s: Settlement) => applied.has(finishKey(s.finish.id, s.finish.attempt));
      await db.transaction().execute(async (trx) => {
        applied = new Set(await finishScrapeJobs(trx, batch));
        await ctx.boss.complete(
          SCRAPE_QUEUE,
          batch.map((s) => s.attempt),
          null,
          { db: fromKysely(trx) },
        );
      });
      const successes = new Map<string, number>();
      for (const s of batch) {
        if (s.finish.status === 'completed' && finished(s))
          successes.set(s.apiKeyId, (successes.get(s.apiKeyId) ?? 0) + 1);
      }
      // Not rethrown: the outcomes are committed; a lost count only lets keys go a few scrapes over quota.
      await recordSuccessfulScrapes(db, successes).catch((err: unknown) =>
        ctx.logger.warn({ err, jobs: batch.length }, 'could not count successful scrapes'),
      );
      return batch.map(finished);
    },
    MAX_SETTLE_BATCH,
    isRetryableWithFewerRows,
  );
}

type Settler = ReturnType<typeof scrapeSettler>;

function pageFinish(
  ctx: ServiceContext,
  row: ScrapeJobRow,
  body: ReturnType<typeof successBody>,
): Pick<Settlement, 'finish' | 'result'> {
  return {
    finish: {
      id: row.id,
      attempt: row.attempts,
      status: 'completed',
      target_status_code: body.data.status_code,
      error_code: null,
      error_message: null,
      charged: body.billing.charged,
      result_bytes: Buffer.byteLength(body.data.content),
      elapsed_ms: Math.round(body.metadata.elapsed_time * 1000),
      result_expires_at: new Date(Date.now() + ctx.config.resultTtlSeconds * 1000),
    },
    result: storedResult(body),
  };
}

interface FailureOutcome {
  code: string;
  message: string;
  elapsedMs: number | null;
}

function failureFinish(row: ScrapeJobRow, outcome: FailureOutcome): Pick<Settlement, 'finish'> {
  return {
    finish: {
      id: row.id,
      attempt: row.attempts,
      status: statusForFailureCode(outcome.code),
      target_status_code: null,
      error_code: outcome.code,
      error_message: outcome.message,
      charged: 0,
      result_bytes: null,
      elapsed_ms: outcome.elapsedMs === null ? null : Math.round(outcome.elapsedMs),
      result_expires_at: null,
    },
  };
}

/** A stopping worker's unfinished job goes back to `queued`; the interrupted attempt is not counted. */
async function handBack(db: Db, job: ScrapeJobRow): Promise<void> {
  await handBackScrapeJob(db, job.id, job.attempts);
}

/**
 * Runs one claimed scrape job and settles it. Throws for infrastructure errors and hand-backs,
 * which pg-boss retries; every scrape outcome, good or bad, is recorded and returns normally.
 */
async function processScrapeJob(
  ctx: ServiceContext,
  settler: Settler,
  budget: MemoryBudget,
  { job, row }: ClaimedScrape,
  { claim, shutdown }: { claim: AbortSignal; shutdown: AbortSignal },
): Promise<void> {
  const settle = (outcome: Pick<Settlement, 'finish' | 'result'>) =>
    settler.add({ attempt: attemptOf(job), apiKeyId: row.api_key_id, ...outcome });
  if (row.attempts > MAX_ATTEMPTS) {
    const message = `The job could not finish: the workers processing it were lost ${MAX_ATTEMPTS} times.`;
    await settle(failureFinish(row, { code: 'JOB_TIMEOUT', message, elapsedMs: null }));
    return;
  }
  const began = performance.now();
  // The page's memory is held from its first byte read until its result is stored.
  const hold = budget.hold();
  try {
    let outcome: Pick<Settlement, 'finish' | 'result'>;
    try {
      const page = await ctx.scraper.scrape(job.data.request, AbortSignal.any([claim, shutdown]), hold);
      outcome = pageFinish(ctx, row, successBody(page, performance.now() - began, ctx.config.pricePerScrape));
    } catch (err) {
      // The claim was taken away (another worker owns the job now): leave the outcome to it.
      if (claim.aborted) return;
      if (shutdown.aborted) {
        // Back to `queued` before pg-boss sees the throw and requeues it, so no other worker can
        // claim the job while its history still says this one holds it.
        await handBack(ctx.store.db, row);
        throw new HandedBack(row.id);
      }
      if (!(err instanceof ScrapeFailure)) throw err;
      outcome = failureFinish(row, {
        code: err.code,
        message: err.message,
        elapsedMs: performance.now() - began,
      });
    }
    await settle(outcome);
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
  await timeOutLostScrapeJob(ctx.store.db, job.data.jobId, message);
}

export interface ScrapeWorker {
  /** There may be new work (submitted by this very process): look now. */
  wake(): void;
  stop(): Promise<void>;
}

/**
 * Runs the scrape workers of this process: a claim loop over the scrape queue, woken by the
 * submit NOTIFY, and the handler of pg-boss's dead-letter queue. `stop` stops claiming at once,
 * lets in-flight scrapes finish for up to OMNISCRAPE_SHUTDOWN_GRACE_SECONDS, then interrupts the
 * rest and hands them back to the queue for another worker: a stop never fails a job.
 */
export async function startScrapeWorker(
  ctx: ServiceContext,
  databaseUrl: string,
  processId: string,
): Promise<ScrapeWorker> {
  const { boss, config, logger } = ctx;
  const groupLimits = keyGroupLimits(ctx);
  const settler = scrapeSettler(ctx);
  const budget = new MemoryBudget(config.workerBodyBudgetBytes);
  const busyKeys = new BusyKeys();
  const loop = new ClaimLoop<ClaimedScrape>(boss, logger, {
    queue: SCRAPE_QUEUE,
    concurrency: config.workerConcurrency,
    idlePollMs: IDLE_POLL_MS,
    heartbeatSeconds: config.heartbeatSeconds,
    claim: async (max) => {
      const result = await claimScrapeJobs(ctx, max, {
        ...(await groupLimits.current()),
        ...busyKeys.fetchOption(),
      });
      busyKeys.add(result.busyKeys);
      return result;
    },
    attemptOf: (claimed) => attemptOf(claimed.job),
    heartbeat: (alive) =>
      touchScrapeJobs(
        ctx.store.db,
        alive.map((c) => c.row.id),
      ),
    handle: async (claimed, signals) => {
      try {
        await processScrapeJob(ctx, settler, budget, claimed, signals);
      } catch (err) {
        if (err instanceof HandedBack)
          logger.info({ jobId: claimed.row.id }, 'handed back an unfinished job');
        else logger.error({ err, jobId: claimed.row.id }, 'scrape job handler failed; pg-boss will retry it');
        throw err;
      }
    },
  });
  // Submissions of this very process wake the loop directly (wake()); their notices are skipped.
  const listener = listenForNotifications(
    databaseUrl,
    JOBS_QUEUED_CHANNEL,
    (from) => {
      if (from !== processId) loop.wake();
    },
    logger,
  );
  loop.start();
  await boss.work<ScrapeJobData>(LOST_SCRAPE_QUEUE, { pollingIntervalSeconds: 5 }, async ([job]) => {
    if (job) await processLostScrapeJob(ctx, job);
  });
  return {
    wake: () => loop.wake(),
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
        } catch (err) {
          // Not rethrown: the last tiers still hold, and the fetch itself will meet the outage.
          ctx.logger.warn({ err }, 'could not read the key concurrency tiers; keeping the last ones');
          readAt = Date.now(); // tried again in GROUP_TIERS_REFRESH_MS, not on every claim
        }
      }
      return { groupConcurrency: { default: ctx.config.defaultConcurrency, tiers } };
    },
  };
}
