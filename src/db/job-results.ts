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

/** Bytes a result sends to Postgres: its parts in UTF-8 (a page of non-ASCII text is up to 3 bytes a character). */
export const resultBytes = (result: PageResult): number =>
  Buffer.byteLength(result.json) + Buffer.byteLength(result.content);

/**
 * Most bytes of results that ride in one statement with their jobs' outcomes (finishScrapeJobs), so
 * no message to Postgres (and no buffer the driver grows to build it) is much larger than that;
 * results beyond it are stored by insertJobResults.
 */
export const MAX_INSERT_BYTES = 1024 * 1024;

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
