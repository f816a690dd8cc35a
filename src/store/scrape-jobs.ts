import { sql, type UpdateObject } from 'kysely';
import type { Database, Db, JobStatus, NewScrapeJob, ScrapeJobRow, ScrapeJobsTable } from './schema';
import type { Store } from './pool';
import {
  insertJobResults,
  MAX_INSERT_BYTES,
  resultLength,
  type NewJobResult,
  type PageResult,
} from './job-results';

/**
 * Every column of a history row, named rather than `*`: the status-change statements run prepared
 * (see openStore), and a prepared `RETURNING *` fails once a migration adds a column.
 */
const SCRAPE_JOB_COLUMNS = [
  'id',
  'api_key_id',
  'kind',
  'url',
  'host',
  'method',
  'format',
  'timeout_seconds',
  'status',
  'target_status_code',
  'error_code',
  'error_message',
  'attempts',
  'charged',
  'result_bytes',
  'elapsed_ms',
  'created_at',
  'started_at',
  'finished_at',
  'updated_at',
  'result_expires_at',
  'heartbeat_at',
] as const satisfies readonly (keyof ScrapeJobsTable)[];
/** Columns a transition may set besides status: values, or SQL expressions over the row. */
export type ScrapeJobPatch = Omit<
  UpdateObject<Database, 'omniscrape.scrape_jobs'>,
  'id' | 'status' | 'updated_at'
>;

/** Channel on which a new queued job is announced, so idle workers claim it at once. */
export const JOBS_QUEUED_CHANNEL = 'omniscrape_jobs_queued';

/**
 * A sync scrape's history row, `processing` from the start. Its slot lease (`heartbeat_at`, see
 * SyncScrapeLeases) starts at the insert itself, after the key lock was waited for, not at the
 * transaction's start.
 */
export async function insertSyncScrapeJob(
  db: Db,
  job: Omit<NewScrapeJob, 'kind' | 'status' | 'heartbeat_at'>,
): Promise<void> {
  await db
    .insertInto('omniscrape.scrape_jobs')
    .values({ ...job, kind: 'sync', status: 'processing', heartbeat_at: sql<Date>`clock_timestamp()` })
    .execute();
}

export async function insertScrapeJobs(db: Db, jobs: NewScrapeJob[]): Promise<void> {
  if (jobs.length > 0) await db.insertInto('omniscrape.scrape_jobs').values(jobs).execute();
}

/**
 * Tells idle workers that jobs were queued. Sent outside any writing transaction (a NOTIFY inside
 * one would serialise commits cluster-wide), after the submissions it announces have committed.
 */
export async function announceQueuedJobs(db: Db, fromProcess: string): Promise<void> {
  await sql`select pg_notify(${JOBS_QUEUED_CHANNEL}, ${fromProcess})`.execute(db);
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
    .returning(SCRAPE_JOB_COLUMNS)
    .executeTakeFirst();
}

/**
 * The same status change for many jobs in one statement (a worker's batch of claims). Each job
 * moves only from one of `from`; returns the rows that moved.
 */
export async function transitionScrapeJobs(
  db: Db,
  ids: readonly string[],
  from: readonly JobStatus[],
  to: JobStatus,
  patch: ScrapeJobPatch = {},
): Promise<ScrapeJobRow[]> {
  if (ids.length === 0) return [];
  return db
    .updateTable('omniscrape.scrape_jobs')
    .set({ ...patch, status: to, updated_at: sql<Date>`now()` })
    .where('id', '=', sql<string>`any(${[...ids]}::uuid[])`)
    .where('status', 'in', from)
    .returning(SCRAPE_JOB_COLUMNS)
    .execute();
}

/** A worker's heartbeat for the async jobs it is processing (see migration 0003). */
export async function touchScrapeJobs(db: Db, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db
    .updateTable('omniscrape.scrape_jobs')
    .set({ heartbeat_at: sql<Date>`now()` })
    .where('id', '=', sql<string>`any(${[...ids]}::uuid[])`)
    .where('status', '=', 'processing')
    .execute();
}

/** How one attempt of an async job ended, as the history records it. */
export interface JobFinish {
  id: string;
  /** The attempt that reached this outcome: only it may finish the job. */
  attempt: number;
  status: Extract<JobStatus, 'completed' | 'failed' | 'timed_out'>;
  target_status_code: number | null;
  error_code: string | null;
  error_message: string | null;
  charged: number | string;
  result_bytes: number | null;
  elapsed_ms: number | null;
  result_expires_at: Date | null;
}

/**
 * An outcome to write, and the result of a completed job: its JSON text (serialised once, by
 * JSON.stringify in the caller, and spliced as it is into the statement's JSON document: text that
 * is not one JSON object would corrupt that document) with the page's content apart (PageResult),
 * which Postgres puts together.
 */
export interface FinishWithResult {
  finish: JobFinish;
  result?: PageResult;
}

/**
 * Ends many `processing` jobs in one statement, each with its own outcome and fenced to its own
 * attempt (a worker whose job was taken over cannot finish the newer attempt), and stores the
 * results of those it ended in the same statement — one round trip for a whole batch. Results
 * ride along up to MAX_INSERT_BYTES in all (no message to Postgres larger than that); the rest
 * follow in their own INSERTs (insertJobResults: a page in a statement of its own, its content one
 * parameter), only for the finishes that applied. Returns the finishes this call applied, each
 * named by finishKey (job and attempt).
 */
export async function finishScrapeJobs(db: Db, finishes: readonly FinishWithResult[]): Promise<string[]> {
  if (finishes.length === 0) return [];
  let inlineBytes = 0;
  const later: FinishWithResult[] = [];
  // Each outcome as JSON, with its result spliced in as JSON (not re-serialised as a string); a
  // page's content rides beside it and is set into the result by the statement.
  const items = finishes.map(({ finish, result }) => {
    const outcome = JSON.stringify(finish);
    if (result === undefined) return outcome;
    const length = resultLength(result);
    if (inlineBytes + length > MAX_INSERT_BYTES) {
      later.push({ finish, result });
      return outcome;
    }
    inlineBytes += length;
    return `${outcome.slice(0, -1)},"result":${result.json},"content":${JSON.stringify(result.content)}}`;
  });
  const { rows } = await sql<{ id: string; attempts: number }>`
    with f as (
      select * from jsonb_to_recordset(${`[${items.join(',')}]`}::jsonb) as f(
               id uuid, attempt integer, status text, target_status_code integer, error_code text,
               error_message text, charged numeric, result_bytes integer, elapsed_ms integer,
               result_expires_at timestamptz, result jsonb, content text)
    ), done as (
      update omniscrape.scrape_jobs as j
         set status = f.status, target_status_code = f.target_status_code, error_code = f.error_code,
             error_message = f.error_message, charged = f.charged, result_bytes = f.result_bytes,
             elapsed_ms = f.elapsed_ms, result_expires_at = f.result_expires_at,
             finished_at = now(), updated_at = now()
        from f
       where j.id = f.id and j.status = 'processing' and j.attempts = f.attempt
      returning j.id, j.attempts
    ), stored as (
      insert into omniscrape.job_results (job_id, result, expires_at)
      select f.id, jsonb_set(f.result, '{data,content}', to_jsonb(f.content)), f.result_expires_at
        from f join done on done.id = f.id and done.attempts = f.attempt
       where f.result is not null
      on conflict (job_id) do nothing
    )
    select id, attempts from done`.execute(db);
  const applied = rows.map((r) => finishKey(r.id, r.attempts));
  if (later.length > 0) {
    const appliedSet = new Set(applied);
    await insertJobResults(
      db,
      later.flatMap(({ finish, result }): NewJobResult[] =>
        appliedSet.has(finishKey(finish.id, finish.attempt))
          ? [{ jobId: finish.id, result: result!, expiresAt: finish.result_expires_at! }]
          : [],
      ),
    );
  }
  return applied;
}

/** How finishScrapeJobs names a finish it applied: the job and its attempt. */
export const finishKey = (id: string, attempt: number): string => `${id}:${attempt}`;

/** What a job's owner sees of it: the history row's public part and the stored result, if any. */
export interface JobForOwner {
  id: string;
  status: JobStatus;
  url: string;
  created_at: Date;
  updated_at: Date;
  error_code: string | null;
  error_message: string | null;
  result_expires_at: Date | null;
  /** The stored result as JSON text (passed through to the client unparsed); null once purged. */
  result_json: string | null;
}

/**
 * The poll query, the API's most frequent statement: two primary-key lookups. Like every repeated
 * statement of the service it runs prepared (see openStore), so each connection plans it once
 * (measured: planning took three times as long as executing it), and it hands the result back as text. It selects by id alone and the owner is
 * checked on the row: with `api_key_id` in the WHERE clause, the generic plan Postgres cached while
 * the table was small walked the key's index instead (measured after a fresh start: 8.7 ms mean per
 * poll, filtering 14,031 of the key's rows), and a cached plan is not revisited as the table grows.
 */
const FIND_JOB = `select j.id, j.api_key_id, j.status, j.url, j.created_at, j.updated_at, j.error_code, j.error_message,
                j.result_expires_at, r.result::text as result_json
           from omniscrape.scrape_jobs j
           left join omniscrape.job_results r on r.job_id = j.id and r.expires_at > now()
          where j.id = $1`;

/** A job as its owner sees it; undefined for unknown ids and for other keys' jobs alike. */
export async function findJobForKey(
  store: Pick<Store, 'pool'>,
  id: string,
  apiKeyId: string,
): Promise<JobForOwner | undefined> {
  const { rows } = await store.pool.query<JobForOwner & { api_key_id: string }>(FIND_JOB, [id]);
  const row = rows[0];
  return row && row.api_key_id === apiKeyId ? row : undefined;
}
