import { sql } from 'kysely';
import type { Db } from './schema';

/**
 * A completed job's result in two parts: its JSON text without the page's content, and the content
 * as plain text. The content goes to Postgres as a statement parameter of its own and is set into
 * the JSON there (at `data.content`), so the worker never copies a page into JSON text: a page costs
 * the process its text and the driver's message, rather than also its JSON escape and the
 * statement's document built around it.
 */
export interface PageResult {
  /** The result as JSON text, with no `data.content` (Postgres sets it). */
  json: string;
  content: string;
}

export interface NewJobResult {
  jobId: string;
  result: PageResult;
  expiresAt: Date;
}

/** Characters a result sends to Postgres (its parts together). */
export const resultLength = (result: PageResult): number => result.json.length + result.content.length;

/**
 * Most bytes of results that ride in one statement with their jobs' outcomes (finishScrapeJobs), so
 * no message to Postgres (and no buffer the driver grows to build it) is larger than that; results
 * beyond it are stored by insertJobResults.
 */
export const MAX_INSERT_BYTES = 1024 * 1024;

/**
 * Stores results of finished jobs one statement each, a page's content one parameter of it, never
 * joined with other pages' (what comes here is large: the results beyond a statement's share). A
 * job's result is written once: later writes are ignored.
 */
export async function insertJobResults(db: Db, results: readonly NewJobResult[]): Promise<void> {
  for (const { jobId, result, expiresAt } of results) {
    await sql`insert into omniscrape.job_results (job_id, result, expires_at)
              values (${jobId}, jsonb_set(${result.json}::jsonb, '{data,content}', to_jsonb(${result.content}::text)), ${expiresAt})
              on conflict (job_id) do nothing`.execute(db);
  }
}

/**
 * Deletes up to `batchSize` expired results and returns how many went. SKIP LOCKED lets two
 * purges (two workers' schedules overlapping) share the work instead of waiting on each other.
 */
export async function deleteExpiredResultsBatch(db: Db, batchSize: number): Promise<number> {
  const result = await db
    .deleteFrom('omniscrape.job_results')
    .where('job_id', 'in', (qb) =>
      qb
        .selectFrom('omniscrape.job_results')
        .select('job_id')
        .where('expires_at', '<=', sql<Date>`now()`)
        .orderBy('expires_at')
        .limit(batchSize)
        .forUpdate()
        .skipLocked(),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
