import { sql } from 'kysely';
import { STATUS_CHANGES, statusLiterals } from './job-status';
import { namedStatement, runStatement } from './prepared-statements';
import { PUBLIC_JOB_COLUMNS, type Db, type JobStatus, type PublicJobRow } from './schema';
import { cancelledColumns, type NewAsyncScrapeJob } from './scrape-jobs';

/**
 * A batch's history rows in one statement, however many: the rows travel as one JSON parameter
 * (a VALUES list would need eleven parameters a row, past Postgres's 65,535 for a large batch),
 * each marked with the batch ($2) for reporting and with the request that submitted it ($3, the
 * same for every row: a parameter rather than a member of each row's JSON).
 */
const INSERT_BATCH_SCRAPE_JOBS = namedStatement(
  'omniscrape_insert_batch_scrape_jobs',
  `insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status, created_at, batch_id,
                                       request_id)
   select r.id, r.api_key_id, 'async', r.url, r.host, r.method, r.format, r.timeout_seconds,
          ${statusLiterals(STATUS_CHANGES.insertBatch.to)}, r.created_at, $2::uuid, $3::text
     from jsonb_to_recordset($1::jsonb) as r(id uuid, api_key_id uuid, url text, host text, method text,
          format text, timeout_seconds double precision, created_at timestamptz)`,
);

/** The batch and its jobs' places in it, request order kept by `position`. */
const INSERT_BATCH = namedStatement(
  'omniscrape_insert_batch',
  `with batch as (
     insert into omniscrape.batches (id, api_key_id, job_count) values ($1, $2, cardinality($3::uuid[]))
   )
   insert into omniscrape.batch_jobs (batch_id, position, job_id)
   select $1, j.ordinality - 1, j.id from unnest($3::uuid[]) with ordinality as j(id, ordinality)`,
);

/**
 * Writes a batch: the batch, its jobs' history rows (`queued`), and their order, in three
 * statements whatever its size. Runs in the caller's transaction, with the pg-boss jobs.
 */
export async function insertBatch(
  db: Db,
  batch: { id: string; apiKeyId: string; requestId: string | null; jobs: readonly NewAsyncScrapeJob[] },
): Promise<void> {
  await runStatement(db, INSERT_BATCH_SCRAPE_JOBS, [JSON.stringify(batch.jobs), batch.id, batch.requestId]);
  await runStatement(db, INSERT_BATCH, [batch.id, batch.apiKeyId, batch.jobs.map((j) => j.id)]);
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
