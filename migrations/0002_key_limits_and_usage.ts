import { Kysely, sql } from 'kysely';

/**
 * Per-key limits and the monthly usage counter they are checked against.
 *
 * NULL limits fall back to the service-wide defaults (settings); a NULL monthly quota means none.
 * `key_usage` counts successful scrapes per key and calendar month (UTC), so checking a quota is
 * one primary-key read. The count is added in a short transaction of its own, right after the
 * scrapes' outcomes commit (recordSuccessfulScrapes), not in the transaction that completes them:
 * the counter row is hot, one per key.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const s = db.schema.withSchema('omniscrape');
  await s
    .alterTable('api_keys')
    .addColumn('concurrency_limit', 'integer', (c) => c.check(sql`concurrency_limit > 0`))
    .addColumn('max_queued', 'integer', (c) => c.check(sql`max_queued > 0`))
    .addColumn('monthly_quota', 'integer', (c) => c.check(sql`monthly_quota >= 0`))
    .execute();

  await s
    .createTable('key_usage')
    .addColumn('api_key_id', 'uuid', (c) => c.notNull().references('omniscrape.api_keys.id'))
    .addColumn('month', 'date', (c) => c.notNull())
    .addColumn('successful_scrapes', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('key_usage_pkey', ['api_key_id', 'month'])
    .execute();

  // What the limits count: a key's jobs being processed, and its queued jobs.
  await s
    .createIndex('scrape_jobs_key_processing_idx')
    .on('scrape_jobs')
    .column('api_key_id')
    .where(sql.ref('status'), '=', 'processing')
    .execute();
  await s
    .createIndex('scrape_jobs_key_queued_idx')
    .on('scrape_jobs')
    .column('api_key_id')
    .where(sql.ref('status'), '=', 'queued')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  const s = db.schema.withSchema('omniscrape');
  await s.dropIndex('scrape_jobs_key_queued_idx').ifExists().execute();
  await s.dropIndex('scrape_jobs_key_processing_idx').ifExists().execute();
  await s.dropTable('key_usage').ifExists().execute();
  await s
    .alterTable('api_keys')
    .dropColumn('monthly_quota')
    .dropColumn('max_queued')
    .dropColumn('concurrency_limit')
    .execute();
}
