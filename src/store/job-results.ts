import { sql } from 'kysely';
import type { Db } from './database';

export async function insertJobResult(db: Db, jobId: string, result: unknown, expiresAt: Date): Promise<void> {
  await db
    .insertInto('omniscrape.job_results')
    .values({ job_id: jobId, result: JSON.stringify(result), expires_at: expiresAt })
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
