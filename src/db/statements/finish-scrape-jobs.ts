import { MAX_INSERT_BYTES, resultBytes, type PageResult } from '../job-results';
import { STATUS_CHANGES, statusLiterals, type FinalStatus } from '../job-status';
import { withJsonMember } from '../json-text';
import { namedStatement, runStatement } from '../prepared-statements';
import type { Db, ScrapeEngine } from '../schema';
import { insertJobResults, type NewJobResult } from './insert-job-results';

/** How one attempt of a job ended, as the history records it. */
export interface JobFinish {
  id: string;
  /** The attempt that reached this outcome: only it may finish the job. */
  attempt: number;
  status: FinalStatus;
  target_status_code: number | null;
  error_code: string | null;
  error_message: string | null;
  charged: number | string;
  result_bytes: number | null;
  elapsed_ms: number | null;
  /** The engine that produced the outcome; null when no scrape ran (a lost job). */
  engine: ScrapeEngine | null;
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

/** How finishScrapeJobs names a finish it applied: the job and its attempt. */
export const finishKey = (id: string, attempt: number): string => `${id}:${attempt}`;

/**
 * The settle statement: $1 is a JSON array of outcomes, each fenced to its own attempt, with the
 * results that fit the statement's share; each job moves only from its STATUS_CHANGES statuses,
 * and a result is stored only for a finish that applied.
 */
const FINISH_SCRAPE_JOBS = namedStatement(
  'omniscrape_finish_scrape_jobs',
  `with f as (
     select * from jsonb_to_recordset($1::jsonb) as f(
              id uuid, attempt integer, status text, target_status_code integer, error_code text,
              error_message text, charged numeric, result_bytes integer, elapsed_ms integer,
              engine text, result_expires_at timestamptz, result jsonb, content text)
   ), done as (
     update omniscrape.scrape_jobs as j
        set status = f.status, target_status_code = f.target_status_code, error_code = f.error_code,
            error_message = f.error_message, charged = f.charged, result_bytes = f.result_bytes,
            elapsed_ms = f.elapsed_ms, engine = f.engine, result_expires_at = f.result_expires_at,
            finished_at = now(), updated_at = now()
       from f
      where j.id = f.id and j.status in (${statusLiterals(STATUS_CHANGES.finishScrapeJobs.from)})
        and j.attempts = f.attempt
     returning j.id, j.attempts
   ), stored as (
     insert into omniscrape.job_results (job_id, result, expires_at)
     select f.id, jsonb_set(f.result, '{data,content}', to_jsonb(f.content)), f.result_expires_at
       from f join done on done.id = f.id and done.attempts = f.attempt
      where f.result is not null
     on conflict (job_id) do nothing
   )
   select id, attempts from done`,
);

/**
 * The settle statement's document: every outcome as JSON, with its result spliced in as JSON (not
 * re-serialised as a string) and the page's content beside it, for as many results, in order, as
 * fit MAX_INSERT_BYTES (counted in UTF-8 bytes); `later` are the finishes whose results go in
 * their own INSERTs.
 */
export function finishDocument(finishes: readonly FinishWithResult[]): {
  json: string;
  later: FinishWithResult[];
} {
  let inlineBytes = 0;
  const later: FinishWithResult[] = [];
  const items = finishes.map(({ finish, result }) => {
    const outcome = JSON.stringify(finish);
    if (result === undefined) return outcome;
    const bytes = resultBytes(result);
    if (inlineBytes + bytes > MAX_INSERT_BYTES) {
      later.push({ finish, result });
      return outcome;
    }
    inlineBytes += bytes;
    const withResult = withJsonMember(outcome, 'result', result.json);
    return withJsonMember(withResult, 'content', JSON.stringify(result.content));
  });
  return { json: `[${items.join(',')}]`, later };
}

/**
 * Ends many `processing` jobs in one statement, each with its own outcome and fenced to its own
 * attempt (a worker whose job was taken over cannot finish the newer attempt), and stores the
 * results of those it ended in the same statement: one round trip for a whole batch. No message
 * to Postgres carries more than MAX_INSERT_BYTES of results; the rest follow one INSERT each, only
 * for the finishes that applied. Returns the finishes this call applied, each named by finishKey.
 */
export async function finishScrapeJobs(db: Db, finishes: readonly FinishWithResult[]): Promise<string[]> {
  if (finishes.length === 0) return [];
  const { json, later } = finishDocument(finishes);
  const rows = await runStatement<{ id: string; attempts: number }>(db, FINISH_SCRAPE_JOBS, [json]);
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

/** A sync scrape's outcome: no attempt (it has one) and no stored result (the caller got it). */
export type SyncFinish = Pick<JobFinish, 'status' | 'charged'> &
  Partial<
    Pick<
      JobFinish,
      'target_status_code' | 'error_code' | 'error_message' | 'result_bytes' | 'elapsed_ms' | 'engine'
    >
  >;

/**
 * Ends a sync scrape's row with its outcome, through the settle statement as attempt 1 (a sync
 * row's only one, see insertSyncScrapeJob). Returns whether it applied (the row was still
 * `processing`: not ended meanwhile as abandoned).
 */
export async function finishSyncScrapeJob(db: Db, id: string, outcome: SyncFinish): Promise<boolean> {
  const finish: JobFinish = {
    target_status_code: null,
    error_code: null,
    error_message: null,
    result_bytes: null,
    elapsed_ms: null,
    engine: null,
    ...outcome,
    id,
    attempt: 1,
    result_expires_at: null,
  };
  return (await finishScrapeJobs(db, [{ finish }])).length > 0;
}
