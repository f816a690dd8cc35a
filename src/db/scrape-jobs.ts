import { sql } from 'kysely';
import { STATUS_CHANGES } from './job-status';
import { PUBLIC_JOB_COLUMNS, type Db, type NewScrapeJob, type ScrapeJobRow } from './schema';
import type { JobForOwner } from './statements/find-job-for-key';

// The history's ordinary statements, through the query builder. Its hot statements (claim,
// settle, heartbeat, poll, sync insert) are in statements/, one file each; which function makes
// which status change is in job-status.ts.

/** An accepted async job's history row, before the store marks it `async` and `queued`. */
export type NewAsyncScrapeJob = Omit<NewScrapeJob, 'kind' | 'status'>;

/** Writes accepted async jobs, `queued`, in one INSERT (a submit batch; see SubmitBatcher). */
export async function insertScrapeJobs(db: Db, jobs: readonly NewAsyncScrapeJob[]): Promise<void> {
  if (jobs.length === 0) return;
  const status = STATUS_CHANGES.insertScrapeJobs.to;
  await db
    .insertInto('omniscrape.scrape_jobs')
    .values(jobs.map((job) => ({ ...job, kind: 'async' as const, status })))
    .execute();
}

/** Puts jobs whose key was full at their claim back to `queued`, in the claim's transaction. */
export async function requeueScrapeJobs(db: Db, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  const { from, to } = STATUS_CHANGES.requeueScrapeJobs;
  await db
    .updateTable('omniscrape.scrape_jobs')
    .set({ status: to, updated_at: sql<Date>`now()` })
    .where('id', '=', sql<string>`any(${[...ids]}::uuid[])`)
    .where('status', 'in', from)
    .execute();
}

/**
 * A stopping worker's unfinished job back to `queued`, the interrupted attempt not counted. Only
 * that attempt may do it: a worker whose job was taken over cannot hand back the newer attempt's.
 * Returns whether it did.
 */
export async function handBackScrapeJob(db: Db, id: string, attempt: number): Promise<boolean> {
  const { from, to } = STATUS_CHANGES.handBackScrapeJob;
  const result = await db
    .updateTable('omniscrape.scrape_jobs')
    .set({ status: to, attempts: sql<number>`greatest(attempts - 1, 0)`, updated_at: sql<Date>`now()` })
    .where('id', '=', id)
    .where('status', 'in', from)
    .where('attempts', '=', attempt)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * Ends a job pg-boss gave up on (its workers kept being lost) `timed_out` with JOB_TIMEOUT, unless
 * it already ended. Returns the job's request id (for the log line about it) when it did.
 */
export async function timeOutLostScrapeJob(
  db: Db,
  id: string,
  message: string,
): Promise<Pick<ScrapeJobRow, 'request_id'> | undefined> {
  const { from, to } = STATUS_CHANGES.timeOutLostScrapeJob;
  return db
    .updateTable('omniscrape.scrape_jobs')
    .set({
      status: to,
      error_code: 'JOB_TIMEOUT',
      error_message: message,
      charged: 0,
      elapsed_ms: null,
      finished_at: sql<Date>`now()`,
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', id)
    .where('status', 'in', from)
    .returning('request_id')
    .executeTakeFirst();
}

/**
 * Ends `failed` (SCRAPE_ABANDONED) the sync scrapes whose API process stopped before recording
 * their outcome: rows whose lease has lapsed (last renewed more than `leaseSeconds` ago, which
 * already freed their key's slot) and that are past their own timeout by `slackSeconds`, so no
 * process can still be scraping them. Returns how many it ended.
 */
export async function failAbandonedSyncScrapes(
  db: Db,
  leaseSeconds: number,
  slackSeconds: number,
): Promise<number> {
  const { from, to } = STATUS_CHANGES.failAbandonedSyncScrapes;
  const result = await db
    .updateTable('omniscrape.scrape_jobs')
    .set({
      status: to,
      error_code: 'SCRAPE_ABANDONED',
      error_message: 'The API process running this sync scrape stopped before recording its outcome.',
      charged: 0,
      finished_at: sql<Date>`now()`,
      updated_at: sql<Date>`now()`,
    })
    .where('kind', '=', 'sync')
    // Literals: the partial index on `processing` rows serves only a text that names the status.
    .where(
      'status',
      'in',
      from.map((status) => sql.lit(status)),
    )
    .where(sql<boolean>`coalesce(heartbeat_at, updated_at) < now() - make_interval(secs => ${leaseSeconds})`)
    .where(sql<boolean>`started_at < now() - make_interval(secs => timeout_seconds + ${slackSeconds})`)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** What a cancel writes besides the status: its code and message, nothing charged, its end. */
export const cancelledColumns = () => ({
  error_code: 'CANCELLED',
  error_message: 'The job was cancelled before it started.',
  charged: 0,
  finished_at: sql<Date>`now()`,
  updated_at: sql<Date>`now()`,
});

/**
 * Cancels a `queued` job of this key: it ends `cancelled` (CANCELLED), never charged. Returns the
 * job as its owner now sees it, or undefined when no queued job of this key has that id (a worker
 * may have started it a moment before: the row lock orders the two, see job-status.ts).
 */
export async function cancelScrapeJob(
  db: Db,
  id: string,
  apiKeyId: string,
): Promise<JobForOwner | undefined> {
  const { from, to } = STATUS_CHANGES.cancelScrapeJob;
  return db
    .updateTable('omniscrape.scrape_jobs')
    .set({ status: to, ...cancelledColumns() })
    .where('id', '=', id)
    .where('api_key_id', '=', apiKeyId)
    .where('status', 'in', from)
    .returning([
      ...PUBLIC_JOB_COLUMNS,
      sql<string>`(extract(epoch from updated_at) * 1000000)::int8::text`.as('updated_us'),
      sql<null>`null`.as('result_json'),
    ])
    .executeTakeFirst();
}
