import { namedStatement, runStatement } from '../prepared-statements';
import type { Db } from '../schema';
import { SELECT_JOBS, type OwnedJob } from './find-job-for-key';

/**
 * Jobs by id in one statement (polls that share a read, JobReads; a status notice's re-read,
 * JobWatchers; a webhook's job), each found as the single poll finds it: one primary-key lookup
 * per id. `limit 1` keeps each lookup a subquery of its own, so the plan is a loop of index lookups
 * whatever the table's size was when the connection planned it: with `j.id = any($1)` the generic
 * plan cached while the table is small scans the whole table, and a cached plan is not revisited
 * as it grows.
 */
const FIND_JOBS = namedStatement(
  'omniscrape_find_jobs_by_id',
  `select found.id, found.api_key_id, found.status, found.url, found.created_at, found.updated_at,
          found.updated_us, found.error_code, found.error_message, found.result_expires_at, found.result_json
     from unnest($1::uuid[]) as wanted(id)
     cross join lateral (${SELECT_JOBS} where j.id = wanted.id limit 1) found`,
);

/** Jobs by id (any owner: the caller checks), straight from Postgres, never from a cache; unknown ids are left out. */
export async function findJobs(db: Db, ids: readonly string[]): Promise<OwnedJob[]> {
  return ids.length === 0 ? [] : runStatement<OwnedJob>(db, FIND_JOBS, [[...new Set(ids)]]);
}
