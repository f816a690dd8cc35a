import type { JobStatus } from './schema';

/**
 * The status machine of a scrape job's history row, written once: which status changes exist and
 * the one store function that makes each. Each is a single statement that moves a row only from
 * the statuses listed here (the functions take `from` and `to` from this table), and the ones
 * marked "fenced" only for the attempt that holds the job, so two writers (two workers, a worker
 * and pg-boss's dead-letter handler, an API process and the reaper) can never both end a job, and
 * a job is finished once and its result written once:
 *
 *   (new)               → queued        insertScrapeJobs          an async job was accepted
 *   (new)               → queued        insertBatch               a batch of async jobs was accepted
 *   (new)               → processing    insertSyncScrapeJob       a sync scrape began in its API process
 *   queued | processing → processing    startScrapeAttempts       a worker claimed it (processing: its
 *                                                                 last worker was lost); one attempt more
 *   processing          → queued        requeueScrapeJobs         its key was full at the claim: it waits
 *   processing          → queued        handBackScrapeJob         fenced; a stopping worker handed it back,
 *                                                                 the interrupted attempt not counted
 *   processing          → completed | failed | timed_out
 *                                       finishScrapeJobs          fenced; an attempt's outcome, its result
 *                                                                 stored with it (sync scrapes too, as
 *                                                                 attempt 1, through finishSyncScrapeJob)
 *   queued | processing → timed_out     timeOutLostScrapeJob      pg-boss gave up on it: its workers kept
 *                                                                 being lost (JOB_TIMEOUT)
 *   processing          → failed        failAbandonedSyncScrapes  a sync scrape whose API process stopped
 *                                                                 before recording it (SCRAPE_ABANDONED)
 *   queued              → cancelled     cancelScrapeJob           its owner cancelled it before any worker
 *                                                                 started it (CANCELLED); never charged
 *   queued              → cancelled     cancelBatchJobs           the same for every queued job of a batch
 *
 * completed, failed, timed_out and cancelled are final. A cancel and a claim both move `queued`
 * rows, one row lock decides: the claim's start then finds the row cancelled and skips it, or the
 * cancel finds it `processing` and refuses. No status change sends a NOTIFY: one inside a writing
 * transaction holds Postgres's global notify lock through the commit, serialising every such
 * commit in the cluster (docs/performance.md). Instead the caller announces the jobs it changed
 * once its transaction committed (StatusNotices in jobs/status-notices.ts, which calls
 * announceStatusChanges), for the `?wait=` polls and event streams. Not announced: new rows
 * (nobody has their id yet) and sync scrapes' rows (their id is never given to the client).
 */
export const STATUS_CHANGES = {
  insertScrapeJobs: { from: [], to: 'queued' },
  insertBatch: { from: [], to: 'queued' },
  insertSyncScrapeJob: { from: [], to: 'processing' },
  startScrapeAttempts: { from: ['queued', 'processing'], to: 'processing' },
  requeueScrapeJobs: { from: ['processing'], to: 'queued' },
  handBackScrapeJob: { from: ['processing'], to: 'queued' },
  finishScrapeJobs: { from: ['processing'], to: ['completed', 'failed', 'timed_out'] },
  timeOutLostScrapeJob: { from: ['queued', 'processing'], to: 'timed_out' },
  failAbandonedSyncScrapes: { from: ['processing'], to: 'failed' },
  cancelScrapeJob: { from: ['queued'], to: 'cancelled' },
  cancelBatchJobs: { from: ['queued'], to: 'cancelled' },
} as const satisfies Record<string, { from: readonly JobStatus[]; to: JobStatus | readonly JobStatus[] }>;

/**
 * Statuses as SQL literals for a statement's text (`'queued', 'processing'`). A status written as a
 * literal lets a generic plan use the partial indexes on `queued` and `processing` rows, which is
 * what a statement that finds its rows by status wants (the settle statement's join, the reaper).
 * A statement that finds its rows by id takes its statuses as a parameter instead: with a literal,
 * Postgres may add a scan of every row in that status to the primary-key lookup.
 */
export function statusLiterals(statuses: JobStatus | readonly JobStatus[]): string {
  return (typeof statuses === 'string' ? [statuses] : statuses).map((s) => `'${s}'`).join(', ');
}

/** The statuses a job ends in: its outcome. */
export type FinalStatus = (typeof STATUS_CHANGES.finishScrapeJobs.to)[number];
