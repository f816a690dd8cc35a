import { STATUS_CHANGES, statusLiterals } from '../job-status';
import { namedStatement, runStatement } from '../prepared-statements';
import type { Db, ScrapeJobRow } from '../schema';

const { from, to } = STATUS_CHANGES.startScrapeAttempts;

/**
 * The claim's last statement, after pg-boss's fetch and the key-slot count in the same
 * transaction (CLAIM_TRANSACTION_SETTINGS): each admitted job becomes `processing`, one attempt
 * more, its heartbeat fresh. A job found `processing` was held by a worker that was lost, and is
 * taken over. The statuses it moves from are a parameter ($2, `from`): the primary key finds the
 * batch (see statusLiterals). Columns are named, not `*`: a prepared statement returning `*` fails
 * once a migration adds a column.
 */
const START_SCRAPE_ATTEMPTS = namedStatement(
  'omniscrape_start_scrape_attempts',
  `update omniscrape.scrape_jobs
      set status = ${statusLiterals(to)}, attempts = attempts + 1, started_at = coalesce(started_at, now()),
          heartbeat_at = now(), updated_at = now()
    where id = any($1::uuid[]) and status = any($2::text[])
returning id, api_key_id, kind, url, host, method, format, timeout_seconds, status, target_status_code,
          error_code, error_message, attempts, charged, result_bytes, elapsed_ms, created_at, started_at,
          finished_at, updated_at, result_expires_at, heartbeat_at, batch_id, request_id, engine`,
);

/** Starts an attempt of each job that may start one; returns the rows of those it started. */
export async function startScrapeAttempts(db: Db, jobIds: readonly string[]): Promise<ScrapeJobRow[]> {
  if (jobIds.length === 0) return [];
  return runStatement<ScrapeJobRow>(db, START_SCRAPE_ATTEMPTS, [jobIds, from]);
}
