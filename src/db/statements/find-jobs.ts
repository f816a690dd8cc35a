import { namedStatement, runStatement } from '../prepared-statements';
import type { Db } from '../schema';
import { SELECT_JOBS, type OwnedJob } from './find-job-for-key';

/** The watched jobs' re-read after a status notice (JobWatchers): one statement for a notice's ids. */
const FIND_JOBS = namedStatement('omniscrape_find_jobs', `${SELECT_JOBS} where j.id = any($1::uuid[])`);

/** Jobs by id (any owner: the caller checks), straight from Postgres, never from a cache. */
export async function findJobs(db: Db, ids: readonly string[]): Promise<OwnedJob[]> {
  return ids.length === 0 ? [] : runStatement<OwnedJob>(db, FIND_JOBS, [ids]);
}
