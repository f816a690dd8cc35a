import { sql } from 'kysely';
import { PUBLIC_JOB_COLUMNS, type Db, type JobStatus, type PublicJobRow } from './schema';

/** Where a page of a key's job list starts: after the job with this creation time and id. */
export interface JobListPosition {
  /** created_at to the microsecond, ISO-8601 UTC (a Date would drop the microseconds). */
  createdAt: string;
  id: string;
}

export interface JobListFilter {
  apiKeyId: string;
  statuses?: readonly JobStatus[];
  /** created_at ≥ since */
  since?: Date;
  /** created_at < until */
  until?: Date;
  after?: JobListPosition;
  limit: number;
}

/** A listed job: the public columns, no result (see JobListPosition for `position`). */
export interface ListedJob extends PublicJobRow {
  /** The result is still kept (a completed job whose result was not purged). */
  result_kept: boolean;
  position: string;
}

/**
 * A key's jobs, newest first (created_at, then id, descending), from `after` on. The key's index
 * (api_key_id, created_at) serves it walked backwards: the position bounds that walk through
 * `created_at <=`, the id breaks ties on the rows of that one instant, and a status filter is
 * checked on the rows the walk reads, or served by a partial index for the rare statuses
 * (migration 0006; plans in docs/performance.md, "Listing jobs on a large history").
 */
export async function listJobsForKey(db: Db, filter: JobListFilter): Promise<ListedJob[]> {
  return listJobsQuery(db, filter).execute();
}

/** The statement of listJobsForKey, unrun (its plan is checked on a large history, docs/performance.md). */
export function listJobsQuery(db: Db, filter: JobListFilter) {
  let query = db
    .selectFrom('omniscrape.scrape_jobs')
    .select([
      ...PUBLIC_JOB_COLUMNS,
      sql<boolean>`coalesce(result_expires_at > now(), false)`.as('result_kept'),
      sql<string>`to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as('position'),
    ])
    .where('api_key_id', '=', filter.apiKeyId);
  // Literals: the partial indexes on a key's queued, processing and unsuccessful rows serve only a
  // text that names the statuses (see statusLiterals).
  if (filter.statuses)
    query = query.where(
      'status',
      'in',
      filter.statuses.map((status) => sql.lit(status)),
    );
  if (filter.since) query = query.where('created_at', '>=', filter.since);
  if (filter.until) query = query.where('created_at', '<', filter.until);
  const { after } = filter;
  if (after) {
    const at = sql<Date>`${after.createdAt}::timestamptz`;
    query = query
      .where('created_at', '<=', at)
      .where((eb) => eb.or([eb('created_at', '<', at), eb('id', '<', after.id)]));
  }
  return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(filter.limit);
}
