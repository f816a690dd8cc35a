import { sql } from 'kysely';
import { STATUS_CHANGES } from './job-status';
import { PUBLIC_JOB_COLUMNS, type Db, type JobStatus, type PublicJobRow } from './schema';
import { cancelledColumns, type NewAsyncScrapeJob } from './scrape-jobs';
import { insertBatchJobs } from './statements/insert-batch';
import { insertBatchScrapeJobs } from './statements/insert-batch-scrape-jobs';

/**
 * Writes a batch: the batch, its jobs' history rows (`queued`), and their order, in three
 * statements whatever its size. Runs in the caller's transaction, with the pg-boss jobs.
 */
export async function insertBatch(
  db: Db,
  batch: { id: string; apiKeyId: string; requestId: string | null; jobs: readonly NewAsyncScrapeJob[] },
): Promise<void> {
  await insertBatchScrapeJobs(db, batch);
  await insertBatchJobs(db, batch);
}

export interface BatchForOwner {
  id: string;
  created_at: Date;
  job_count: number;
}

/** A batch as its owner sees it; undefined for unknown ids and other keys' batches alike. */
export async function findBatchForKey(
  db: Db,
  id: string,
  apiKeyId: string,
): Promise<BatchForOwner | undefined> {
  return db
    .selectFrom('omniscrape.batches')
    .select(['id', 'created_at', 'job_count'])
    .where('id', '=', id)
    .where('api_key_id', '=', apiKeyId)
    .executeTakeFirst();
}

export interface BatchProgress {
  /** How many of the batch's jobs are in each status (statuses with none are left out). */
  counts: Partial<Record<JobStatus, number>>;
  /** The latest `updated_at` of its jobs, in microseconds: it grows with every status change. */
  changedUs: number;
}

/** The batch's jobs counted by status, and when the last of them changed. */
export async function batchProgress(db: Db, batchId: string): Promise<BatchProgress> {
  const rows = await db
    .selectFrom('omniscrape.batch_jobs as b')
    .innerJoin('omniscrape.scrape_jobs as j', 'j.id', 'b.job_id')
    .select([
      'j.status',
      (eb) => eb.fn.countAll<string>().as('n'),
      sql<string>`(extract(epoch from max(j.updated_at)) * 1000000)::int8::text`.as('changed_us'),
    ])
    .where('b.batch_id', '=', batchId)
    .groupBy('j.status')
    .execute();
  return {
    counts: Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])),
    changedUs: Math.max(0, ...rows.map((r) => Number(r.changed_us))),
  };
}

export interface BatchJob extends PublicJobRow {
  position: number;
  /** Whether the result is still stored (a completed job's). */
  has_result: boolean;
}

/** Up to `limit` of the batch's jobs after `afterPosition`, in request order. */
export async function listBatchJobs(
  db: Db,
  batchId: string,
  afterPosition: number,
  limit: number,
): Promise<BatchJob[]> {
  const rows = await db
    .selectFrom('omniscrape.batch_jobs as b')
    .innerJoin('omniscrape.scrape_jobs as j', 'j.id', 'b.job_id')
    .leftJoin('omniscrape.job_results as r', (join) =>
      join.onRef('r.job_id', '=', 'j.id').on('r.expires_at', '>', (eb) => eb.fn('now')),
    )
    .select([
      'b.position',
      ...PUBLIC_JOB_COLUMNS.map((column) => `j.${column}` as const),
      (eb) => eb('r.job_id', 'is not', null).$castTo<boolean>().as('has_result'),
    ])
    .where('b.batch_id', '=', batchId)
    .where('b.position', '>', afterPosition)
    .orderBy('b.position')
    .limit(limit)
    .execute();
  return rows;
}

/** The batch's job ids in request order. */
export async function batchJobIds(db: Db, batchId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('omniscrape.batch_jobs')
    .select('job_id')
    .where('batch_id', '=', batchId)
    .orderBy('position')
    .execute();
  return rows.map((r) => r.job_id);
}

/**
 * Cancels the batch's `queued` jobs (one statement; jobs a worker already started go on), as
 * cancelScrapeJob does one job; returns the ids of those it cancelled.
 */
export async function cancelBatchJobs(db: Db, batchId: string, apiKeyId: string): Promise<string[]> {
  const { from, to } = STATUS_CHANGES.cancelBatchJobs;
  const rows = await db
    .updateTable('omniscrape.scrape_jobs')
    .set({ status: to, ...cancelledColumns() })
    .where('id', 'in', (eb) =>
      eb.selectFrom('omniscrape.batch_jobs').select('job_id').where('batch_id', '=', batchId),
    )
    .where('api_key_id', '=', apiKeyId)
    .where('status', 'in', from)
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}
