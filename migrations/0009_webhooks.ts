import { Kysely, sql } from 'kysely';

/**
 * Webhooks: the URL (and secret) a job reports its end to, every delivery attempt, and a key's
 * default URL. A job's webhook is a row of its own rather than columns of the history row, so
 * jobs without one (most) cost nothing, and the history rows keep their width.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('omniscrape.job_webhooks')
    .addColumn('job_id', 'uuid', (c) => c.primaryKey())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('secret', 'text')
    .execute();
  await db.schema
    .createTable('omniscrape.webhook_deliveries')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('job_id', 'uuid', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('redelivery', 'boolean', (c) => c.notNull())
    .addColumn('succeeded', 'boolean', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('error', 'text')
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('webhook_deliveries_job_id_id_idx')
    .on('omniscrape.webhook_deliveries')
    .columns(['job_id', 'id'])
    .execute();
  await db.schema.alterTable('omniscrape.api_keys').addColumn('webhook_url', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('omniscrape.api_keys').dropColumn('webhook_url').execute();
  await db.schema.dropTable('omniscrape.webhook_deliveries').execute();
  await db.schema.dropTable('omniscrape.job_webhooks').execute();
}
