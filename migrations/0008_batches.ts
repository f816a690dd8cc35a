import { Kysely, sql } from 'kysely';

/**
 * Batches of async jobs (POST /v1/scrape/batch). A batch's jobs are listed in `batch_jobs`, in
 * request order, rather than marked on their history rows: the history table's rows, and the
 * index entries each status change writes, stay as they were for every job.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('omniscrape.batches')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('api_key_id', 'uuid', (c) => c.notNull().references('omniscrape.api_keys.id'))
    .addColumn('job_count', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createTable('omniscrape.batch_jobs')
    .addColumn('batch_id', 'uuid', (c) => c.notNull().references('omniscrape.batches.id'))
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('job_id', 'uuid', (c) => c.notNull())
    .addPrimaryKeyConstraint('batch_jobs_pkey', ['batch_id', 'position'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('omniscrape.batch_jobs').execute();
  await db.schema.dropTable('omniscrape.batches').execute();
}
