import type { PageResult } from '../job-results';
import { namedStatement, runStatement } from '../prepared-statements';
import type { Db } from '../schema';

export interface NewJobResult {
  jobId: string;
  result: PageResult;
  expiresAt: Date;
}

/** The page's content is a parameter of its own, set into the result's JSON by Postgres (see PageResult). */
const INSERT_JOB_RESULT = namedStatement(
  'omniscrape_insert_job_result',
  `insert into omniscrape.job_results (job_id, result, expires_at)
   values ($1, jsonb_set($2::jsonb, '{data,content}', to_jsonb($3::text)), $4)
       on conflict (job_id) do nothing`,
);

/**
 * Stores results of finished jobs one statement each, never joining one page's content with
 * another's (what comes here is large: the results beyond finishScrapeJobs's share). A job's
 * result is written once: later writes are ignored.
 */
export async function insertJobResults(db: Db, results: readonly NewJobResult[]): Promise<void> {
  for (const { jobId, result, expiresAt } of results) {
    await runStatement(db, INSERT_JOB_RESULT, [jobId, result.json, result.content, expiresAt]);
  }
}
