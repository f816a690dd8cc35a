import { sql, type Insertable, type Selectable, type UpdateObject } from 'kysely';
import type { Database, Db, JobStatus, ScrapeJobsTable } from './database';

export type ScrapeJobRow = Selectable<ScrapeJobsTable>;
export type NewScrapeJob = Insertable<ScrapeJobsTable>;
/** Columns a transition may set besides status: values, or SQL expressions over the row. */
export type ScrapeJobPatch = Omit<UpdateObject<Database, 'omniscrape.scrape_jobs'>, 'id' | 'status' | 'updated_at'>;

/** Channel on which a new queued job is announced, so idle workers claim it at once. */
export const JOBS_QUEUED_CHANNEL = 'omniscrape_jobs_queued';

export async function insertScrapeJob(db: Db, job: NewScrapeJob): Promise<void> {
  await db.insertInto('omniscrape.scrape_jobs').values(job).execute();
}

export async function insertScrapeJobs(db: Db, jobs: NewScrapeJob[]): Promise<void> {
  if (jobs.length > 0) await db.insertInto('omniscrape.scrape_jobs').values(jobs).execute();
}

/**
 * Tells idle workers that jobs were queued. Sent outside any writing transaction (a NOTIFY inside
 * one would serialise commits cluster-wide), after the submissions it announces have committed.
 */
export async function announceQueuedJobs(db: Db): Promise<void> {
  await sql`select pg_notify(${JOBS_QUEUED_CHANNEL}, '')`.execute(db);
}

/**
 * The only statement that changes a job's status. It moves the job only from one of `from`, so
 * two workers (or a worker and the reaper) can never both finish it. With `attempt`, only that
 * attempt of the job may move it: a worker whose job was taken over (the attempt count moved on)
 * cannot finish or hand back the newer attempt's job.
 *
 * It does not NOTIFY: a NOTIFY in a writing transaction takes Postgres's global notify lock through
 * that transaction's commit, which serialises every such commit in the cluster (measured: the
 * submit rate fell to ~400/s). Status notices for long-poll and SSE belong here, sent after commit.
 * Returns the updated row, or undefined when the job was not in an allowed state.
 */
export async function transitionScrapeJob(
  db: Db,
  id: string,
  from: readonly JobStatus[],
  to: JobStatus,
  patch: ScrapeJobPatch = {},
  attempt?: number,
): Promise<ScrapeJobRow | undefined> {
  return db
    .updateTable('omniscrape.scrape_jobs')
    .set({ ...patch, status: to, updated_at: sql<Date>`now()` })
    .where('id', '=', id)
    .where('status', 'in', from)
    .$if(attempt !== undefined, (qb) => qb.where('attempts', '=', attempt!))
    .returningAll()
    .executeTakeFirst();
}

export interface JobWithResult extends ScrapeJobRow {
  result: unknown | null;
}

/** A job as its owner sees it; undefined for unknown ids and for other keys' jobs alike. */
export async function findJobForKey(db: Db, id: string, apiKeyId: string): Promise<JobWithResult | undefined> {
  const row = await db
    .selectFrom('omniscrape.scrape_jobs as j')
    .leftJoin('omniscrape.job_results as r', (join) =>
      join.onRef('r.job_id', '=', 'j.id').on('r.expires_at', '>', sql<Date>`now()`),
    )
    .selectAll('j')
    .select('r.result')
    .where('j.id', '=', id)
    .where('j.api_key_id', '=', apiKeyId)
    .executeTakeFirst();
  return row as JobWithResult | undefined;
}
