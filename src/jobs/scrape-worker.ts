import type { ServiceContext } from '../context';
import { MemoryBudget } from '../scraper/memory-budget';
import { listenForNotifications } from '../db/notification-listener';
import { JOBS_QUEUED_CHANNEL } from '../db/statements/announce-queued-jobs';
import { touchScrapeJobs } from '../db/statements/touch-scrape-jobs';
import { BusyKeys, claimScrapeJobs, type ClaimedScrape } from './claim-scrape-jobs';
import { ClaimLoop } from './claim-loop';
import { keyGroupLimits } from './key-group-limits';
import { attemptOf, LOST_SCRAPE_QUEUE, SCRAPE_QUEUE, type ScrapeJobData } from './queue';
import { jobEndOf } from './outcome';
import { HandedBack, processLostScrapeJob, processScrapeJob } from './scrape-job-handler';
import { scrapeSettler } from './settle-scrape-jobs';

/** A worker with work that may be waiting (a key at its limit, jobs put back) looks again this often. */
const IDLE_POLL_MS = 1_000;
/**
 * A worker that found the queue drained looks again this often even without a NOTIFY: submissions
 * are announced, but retries of lost or handed-back jobs are not. Each look is a claim transaction
 * of 8 statements, what an idle worker costs its Postgres (`idle_pg_cpu_pct` in the benchmark).
 */
const DRAINED_POLL_MS = 5_000;

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
  /** Where its LISTEN connection goes: a direct connection, never through a transaction-mode pooler. */
  listenUrl: string,
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
    drainedPollMs: DRAINED_POLL_MS,
    heartbeatSeconds: config.heartbeatSeconds,
    claim: async (max) => {
      const result = await claimScrapeJobs(ctx, max, {
        ...(await groupLimits.current()),
        ...busyKeys.fetchOption(),
      });
      busyKeys.add(result.busyKeys);
      for (const { row } of result.claimed)
        if (row.attempts === 1 && row.started_at) ctx.metrics.jobStarted(row.created_at, row.started_at);
      return result;
    },
    attemptOf: (claimed) => attemptOf(claimed.job),
    heartbeat: (alive) =>
      touchScrapeJobs(
        ctx.store.db,
        alive.map((c) => c.row.id),
      ),
    handle: async (claimed, signals) => {
      const { row } = claimed;
      // Every line about the job carries the id of the request that submitted it.
      const log = logger.child({ jobId: row.id, requestId: row.request_id });
      log.debug({ attempt: row.attempts }, 'scrape job started');
      try {
        const ended = await processScrapeJob(ctx, settler, budget, claimed, signals);
        if (!ended) return log.info({ attempt: row.attempts }, 'scrape job taken over by another worker');
        ctx.metrics.jobEnded(jobEndOf('async', ended, row.started_at));
        log.info(
          {
            attempt: row.attempts,
            status: ended.status,
            errorCode: ended.error_code,
            ms: ended.elapsed_ms,
            engine: ended.engine,
          },
          'scrape job ended',
        );
      } catch (err) {
        if (err instanceof HandedBack) log.info('handed back an unfinished job');
        else log.error({ err }, 'scrape job handler failed; pg-boss will retry it');
        throw err;
      }
    },
  });
  // Submissions of this very process wake the loop directly (wake()); their notices are skipped.
  const listener = listenForNotifications(
    listenUrl,
    JOBS_QUEUED_CHANNEL,
    (from) => {
      if (from !== processId) loop.wake();
    },
    logger,
    { observer: ctx.metrics.listenerObserver('worker') },
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
