import type { Kysely } from 'kysely';

/**
 * `scrape_jobs.heartbeat_at`: when the worker processing an async job last said it still is (set
 * when the job starts, refreshed with the pg-boss heartbeat). A key's concurrency limit counts an
 * async job as running only while its heartbeat is fresh, so a job whose worker died does not hold
 * one of its key's slots until pg-boss hands it out again.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .withSchema('omniscrape')
    .alterTable('scrape_jobs')
    .addColumn('heartbeat_at', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.withSchema('omniscrape').alterTable('scrape_jobs').dropColumn('heartbeat_at').execute();
}
