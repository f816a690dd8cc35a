import { STATUS_CHANGES, statusLiterals } from '../job-status';
import { namedStatement, runStatement } from '../prepared-statements';
import type { Db } from '../schema';
import type { NewAsyncScrapeJob } from '../scrape-jobs';

/**
 * A batch's history rows in one statement, however many: the rows travel as one JSON parameter
 * (a VALUES list would need eleven parameters a row, past Postgres's 65,535 for a large batch),
 * each marked with the batch ($2) for reporting and with the request that submitted it ($3, the
 * same for every row: a parameter rather than a member of each row's JSON).
 */
const INSERT_BATCH_SCRAPE_JOBS = namedStatement(
  'omniscrape_insert_batch_scrape_jobs',
  `insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status, created_at, batch_id,
                                       request_id)
   select r.id, r.api_key_id, 'async', r.url, r.host, r.method, r.format, r.timeout_seconds,
          ${statusLiterals(STATUS_CHANGES.insertBatch.to)}, r.created_at, $2::uuid, $3::text
     from jsonb_to_recordset($1::jsonb) as r(id uuid, api_key_id uuid, url text, host text, method text,
          format text, timeout_seconds double precision, created_at timestamptz)`,
);

/** Inserts a batch's history rows, `queued`, in the caller's transaction. */
export async function insertBatchScrapeJobs(
  db: Db,
  batch: { id: string; requestId: string | null; jobs: readonly NewAsyncScrapeJob[] },
): Promise<void> {
  await runStatement(db, INSERT_BATCH_SCRAPE_JOBS, [JSON.stringify(batch.jobs), batch.id, batch.requestId]);
}
