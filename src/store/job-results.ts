import { sql } from 'kysely';
import type { Db } from './database';

export interface NewJobResult {
  jobId: string;
  /** The result as JSON text (serialised once, by the caller). */
  json: string;
  expiresAt: Date;
}

/** Stores the results of finished jobs (a job's result is written once: later writes are ignored). */
export async function insertJobResults(db: Db, results: readonly NewJobResult[]): Promise<void> {
  if (results.length === 0) return;
  await db
    .insertInto('omniscrape.job_results')
    .values(results.map((r) => ({ job_id: r.jobId, result: r.json, expires_at: r.expiresAt })))
    .onConflict((oc) => oc.column('job_id').doNothing())
    .execute();
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
