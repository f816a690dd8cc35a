import { Kysely, sql } from 'kysely';

/**
 * `cancelled`: a job its owner cancelled while it was still `queued` (DELETE /v1/jobs/{id}). A final
 * status like `completed`, never charged; the worker's claim moves only `queued` and `processing`
 * rows, so a cancelled job is never started. The status check of `scrape_jobs` is widened to allow
 * it; no index is added (the job list is served by `scrape_jobs_key_created_idx`, README "List jobs").
 */
export async function up(db: Kysely<any>): Promise<void> {
  await replaceStatusCheck(db, ['queued', 'processing', 'completed', 'failed', 'timed_out', 'cancelled']);
}

/** Cancelled rows cannot stay under the old check: they end `failed` with their code kept. */
export async function down(db: Kysely<any>): Promise<void> {
  await sql`update omniscrape.scrape_jobs set status = 'failed' where status = 'cancelled'`.execute(db);
  await replaceStatusCheck(db, ['queued', 'processing', 'completed', 'failed', 'timed_out']);
}

async function replaceStatusCheck(db: Kysely<any>, statuses: string[]): Promise<void> {
  const list = sql.join(statuses.map((s) => sql.lit(s)));
  await sql`alter table omniscrape.scrape_jobs drop constraint scrape_jobs_status_check`.execute(db);
  await sql`alter table omniscrape.scrape_jobs add constraint scrape_jobs_status_check check (status in (${list}))`.execute(
    db,
  );
}
