import { namedStatement, runStatement } from '../prepared-statements';
import type { Db, JobStatus } from '../schema';

/** What a job's owner sees of it: the history row's public part and the stored result, if any. */
export interface JobForOwner {
  id: string;
  status: JobStatus;
  url: string;
  created_at: Date;
  updated_at: Date;
  /**
   * `updated_at` in microseconds since 1970 (a Date keeps only milliseconds): every status change
   * moves it forward, so it orders one job's states (an event stream's ids).
   */
  updated_us: string;
  error_code: string | null;
  error_message: string | null;
  result_expires_at: Date | null;
  /** The stored result as JSON text (passed through to the client unparsed); null once purged. */
  result_json: string | null;
}

/**
 * A job's owner and what the owner sees of it, with the result as text: the select of this file's
 * statement and of find-jobs.ts.
 */
export const SELECT_JOBS = `select j.id, j.api_key_id, j.status, j.url, j.created_at, j.updated_at,
          (extract(epoch from j.updated_at) * 1000000)::int8::text as updated_us, j.error_code,
          j.error_message, j.result_expires_at, r.result::text as result_json
     from omniscrape.scrape_jobs j
     left join omniscrape.job_results r on r.job_id = j.id and r.expires_at > now()
   `;

/**
 * The poll, the API's most frequent statement: two primary-key lookups, prepared so each
 * connection plans it once (planning cost more than running it, docs/performance.md), with the
 * result handed back as text. It selects by id alone and the owner is checked on the row: with
 * `api_key_id` in the WHERE clause, a generic plan Postgres caches while the table is small walks
 * the key's index instead, and a cached plan is not revisited as the table grows.
 */
const FIND_JOB = namedStatement('omniscrape_find_job', `${SELECT_JOBS} where j.id = $1`);

/** A job as its owner sees it; undefined for unknown ids and for other keys' jobs alike. */
export async function findJobForKey(db: Db, id: string, apiKeyId: string): Promise<JobForOwner | undefined> {
  return ownedBy(await findJob(db, id), apiKeyId);
}

/** The job if it is this key's; undefined for no job and for another key's alike. */
export function ownedBy(job: OwnedJob | undefined, apiKeyId: string): JobForOwner | undefined {
  return job?.api_key_id === apiKeyId ? job : undefined;
}

/** A job by id with its owner's id (any owner: the caller checks). */
export async function findJob(db: Db, id: string): Promise<OwnedJob | undefined> {
  const [row] = await runStatement<OwnedJob>(db, FIND_JOB, [id]);
  return row;
}

/** A job with its owner's id, as JobWatchers re-reads it. */
export type OwnedJob = JobForOwner & { api_key_id: string };
