import { fromKysely, type JobAttempt } from 'pg-boss';
import type { ServiceContext } from '../context';
import { isRetryableWithFewerRows } from '../db/transactions';
import type { PageResult } from '../db/job-results';
import { recordSuccessfulScrapes } from '../db/key-limits-queries';
import { finishKey, finishScrapeJobs, type JobFinish } from '../db/statements/finish-scrape-jobs';
import { GroupCommit } from './group-commit';
import { SCRAPE_QUEUE, WEBHOOK_QUEUE } from './queue';
import { deliveryJobs } from './webhook-trigger';

/** Most jobs settled by one transaction. */
const MAX_SETTLE_BATCH = 200;

/** One claimed job's end: its history outcome (and result), and its pg-boss attempt to remove. */
export interface Settlement {
  attempt: JobAttempt;
  apiKeyId: string;
  finish: JobFinish;
  /** The result of a completed job. */
  result?: PageResult;
  /** The job has a webhook: its end is delivered (ScrapeJobData.webhook). */
  webhook?: boolean;
}

/** Settles a job; resolves true when its outcome was written (false: another attempt owns the job now). */
export type ScrapeSettler = GroupCommit<Settlement, boolean>;

/**
 * Settles finished jobs by group commit (see GroupCommit): the history outcomes, the results and
 * the removal of the pg-boss attempts of a whole batch in one transaction, so a job's outcome and
 * its leaving the queue commit together. Successful scrapes are counted against their keys'
 * quotas right after, in one statement per batch. A batch that fails on what one job holds is
 * settled again job by job, so one bad result cannot have every other job of its batch retried.
 */
export function scrapeSettler(ctx: ServiceContext): ScrapeSettler {
  const { db } = ctx.store;
  return new GroupCommit<Settlement, boolean>(
    async (batch) => {
      let applied = new Set<string>();
      const finished = (s: Settlement) => applied.has(finishKey(s.finish.id, s.finish.attempt));
      await db.transaction().execute(async (trx) => {
        applied = new Set(await finishScrapeJobs(trx, batch));
        const bossDb = fromKysely(trx);
        // The delivery is enqueued with the outcome it reports: neither commits without the other.
        const ended = batch
          .filter((s) => s.webhook && finished(s))
          .map((s) => ({ jobId: s.finish.id, apiKeyId: s.apiKeyId }));
        if (ended.length > 0) await ctx.boss.insert(WEBHOOK_QUEUE, deliveryJobs(ended), { db: bossDb });
        // The attempt leaves the queue here rather than completing: the history row holds its
        // outcome, and a completed row would cost a second row version now and a delete later.
        // Fenced like `complete` (the attempt, while active): a newer attempt stays queued.
        await ctx.boss.deleteJob(
          SCRAPE_QUEUE,
          batch.map((s) => s.attempt),
          { db: bossDb },
        );
      });
      ctx.statusNotices.announce(
        'ended',
        batch.filter(finished).map((s) => s.finish.id),
      );
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
