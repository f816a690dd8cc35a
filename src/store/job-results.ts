import { sql } from 'kysely';
import type { Db } from './database';

export interface NewJobResult {
  jobId: string;
  /** The result as JSON text (serialised once, by the caller). */
  json: string;
  expiresAt: Date;
}

/**
 * Most bytes of results sent in one INSERT. Small results go many to a statement; large ones one
 * each, so no message to Postgres (and no buffer the driver grows to build it) is larger than a few
 * results.
 */
export const MAX_INSERT_BYTES = 1024 * 1024;

/** Stores the results of finished jobs (a job's result is written once: later writes are ignored). */
export async function insertJobResults(db: Db, results: readonly NewJobResult[]): Promise<void> {
  let start = 0;
  while (start < results.length) {
    let end = start + 1;
    let bytes = results[start]!.json.length;
    while (end < results.length && bytes + results[end]!.json.length <= MAX_INSERT_BYTES) bytes += results[end++]!.json.length;
    await db
      .insertInto('omniscrape.job_results')
      .values(results.slice(start, end).map((r) => ({ job_id: r.jobId, result: r.json, expires_at: r.expiresAt })))
      .onConflict((oc) => oc.column('job_id').doNothing())
      .execute();
    start = end;
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
