import { STATUS_CHANGES, statusLiterals } from '../job-status';
import { namedStatement, runStatement } from '../prepared-statements';
import type { Db, ScrapeJobRow } from '../schema';

/** What a sync scrape's history row needs to begin. */
export type NewSyncScrapeJob = Pick<
  ScrapeJobRow,
  'id' | 'api_key_id' | 'url' | 'host' | 'method' | 'format' | 'timeout_seconds' | 'started_at' | 'request_id'
>;

/**
 * Attempt 1 from the start: the scrape runs once, and its outcome is written as that attempt
 * (finishSyncScrapeJob). clock_timestamp(), not now(): the lease starts when the row is written,
 * after the key's lock was waited for, not when the transaction began.
 */
const INSERT_SYNC_SCRAPE_JOB = namedStatement(
  'omniscrape_insert_sync_scrape_job',
  `insert into omniscrape.scrape_jobs
          (id, api_key_id, kind, url, host, method, format, timeout_seconds, status, attempts, started_at, heartbeat_at,
           request_id)
   values ($1, $2, 'sync', $3, $4, $5, $6, $7, ${statusLiterals(STATUS_CHANGES.insertSyncScrapeJob.to)}, 1, $8,
           clock_timestamp(), $9)`,
);

/**
 * A sync scrape's history row, `processing` from the start, which holds one of its key's
 * concurrency slots while its lease (`heartbeat_at`, see SyncScrapeLeases) is fresh.
 */
export async function insertSyncScrapeJob(db: Db, job: NewSyncScrapeJob): Promise<void> {
  await runStatement(db, INSERT_SYNC_SCRAPE_JOB, [
    job.id,
    job.api_key_id,
    job.url,
    job.host,
    job.method,
    job.format,
    job.timeout_seconds,
    job.started_at,
    job.request_id,
  ]);
}
