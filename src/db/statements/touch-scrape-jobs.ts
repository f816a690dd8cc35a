import { namedStatement, runStatement } from '../prepared-statements';
import type { Db } from '../schema';

/**
 * A heartbeat changes no status: it only refreshes `processing` rows (a finished job stays as it
 * ended). The status is a parameter ($2): the primary key finds the rows (see statusLiterals).
 */
const TOUCH_SCRAPE_JOBS = namedStatement(
  'omniscrape_touch_scrape_jobs',
  `update omniscrape.scrape_jobs
      set heartbeat_at = now()
    where id = any($1::uuid[]) and status = $2`,
);

/**
 * Renews the sign of life of running scrapes: a worker's heartbeat for its async jobs (migration
 * 0003), an API process's lease for its sync scrapes (migration 0005).
 */
export async function touchScrapeJobs(db: Db, ids: readonly string[]): Promise<void> {
  if (ids.length > 0) await runStatement(db, TOUCH_SCRAPE_JOBS, [ids, 'processing']);
}
