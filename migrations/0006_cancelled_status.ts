import { Kysely, sql } from 'kysely';

/**
 * `cancelled`: a job its owner cancelled while it was still `queued` (DELETE /v1/jobs/{id}). A final
 * status like `completed`, never charged; the worker's claim moves only `queued` and `processing`
 * rows, so a cancelled job is never started. The status check of `scrape_jobs` is widened to allow
 * it.
 *
 * The job list (GET /v1/jobs, newest first) walks `scrape_jobs_key_created_idx` backwards and checks
 * the status on each row it reads: fine for the common statuses, but a key's rare ones (`failed`,
 * `timed_out`, `cancelled`) would have it read the key's whole history to fill a page. A partial
 * index holds just those rows, in list order. Its cost lands only on jobs that end that way (a row
 * enters it in its final version); queued, processing and completed rows never do, so the hot path
 * writes no more index entries than before. Queued and processing rows are few per key, found by the
 * per-key partial indexes of migration 0002. Plans: README "List jobs".
 */
export async function up(db: Kysely<any>): Promise<void> {
  await replaceStatusCheck(db, ['queued', 'processing', 'completed', 'failed', 'timed_out', 'cancelled']);
  await db.schema
    .withSchema('omniscrape')
    .createIndex('scrape_jobs_key_unsuccessful_idx')
    .on('scrape_jobs')
    .columns(['api_key_id', 'created_at'])
    .where(sql.ref('status'), 'in', [sql.lit('failed'), sql.lit('timed_out'), sql.lit('cancelled')])
    .execute();
}

/** Cancelled rows cannot stay under the old check: they end `failed` with their code kept. */
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.withSchema('omniscrape').dropIndex('scrape_jobs_key_unsuccessful_idx').ifExists().execute();
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
