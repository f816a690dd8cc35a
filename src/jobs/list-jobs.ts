import type { Db } from '../db/schema';
import { listJobsForKey, type JobListFilter, type JobListPosition } from '../db/job-list';
import { presentJobState, type JobView } from './job-view';

export interface JobListPage {
  data: JobView[];
  /** Where the next page starts; null on the last page. */
  next_cursor: string | null;
}

/**
 * One page of a key's jobs, newest first. The cursor names the last job of the page (its creation
 * time and id), not an offset: jobs inserted meanwhile are newer, so they never shift a later page.
 */
export async function listJobs(db: Db, filter: JobListFilter): Promise<JobListPage> {
  const rows = await listJobsForKey(db, { ...filter, limit: filter.limit + 1 });
  const page = rows.slice(0, filter.limit);
  const last = page.at(-1);
  return {
    data: page.map((row) => presentJobState(row, row.result_kept)),
    next_cursor:
      rows.length > filter.limit && last ? encodeCursor({ createdAt: last.position, id: last.id }) : null,
  };
}

/** Opaque to clients: base64url of "<created_at to the microsecond>|<id>". */
export function encodeCursor(position: JobListPosition): string {
  return Buffer.from(`${position.createdAt}|${position.id}`).toString('base64url');
}

const CURSOR =
  /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)\|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** The position a cursor names; undefined when it is not one this service made. */
export function decodeCursor(cursor: string): JobListPosition | undefined {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) return undefined;
  const match = CURSOR.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) return undefined;
  const [, createdAt, id] = match as unknown as [string, string, string];
  // A forged date Postgres would refuse (February 30, year 0) is no position: a 400, not a 500.
  // No job was created before 1970.
  const ms = Date.parse(createdAt);
  if (Number.isNaN(ms) || ms < 0 || new Date(ms).toISOString().slice(0, 23) !== createdAt.slice(0, 23))
    return undefined;
  return { createdAt, id };
}
