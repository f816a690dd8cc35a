import { Kysely, sql } from 'kysely';

/**
 * The project's own tables, in schema `omniscrape` (pg-boss keeps its queue tables in `pgboss`).
 *
 * `scrape_jobs` is the job history: one row per scrape, sync or async, kept after the result is
 * purged, shaped for plain-SQL reporting. `job_results` holds the answer of each completed async
 * job as jsonb and is emptied by the result purge; keeping it apart keeps the history table narrow
 * and makes the purge a batched DELETE that never rewrites history rows.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createSchema('omniscrape').ifNotExists().execute();
  const s = db.schema.withSchema('omniscrape');

  await s
    .createTable('api_keys')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('key_prefix', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('revoked_at', 'timestamptz')
    .execute();

  await s
    .createTable('scrape_jobs')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('api_key_id', 'uuid', (c) => c.notNull().references('omniscrape.api_keys.id'))
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('sync', 'async')`))
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('format', 'text', (c) => c.notNull())
    .addColumn('timeout_seconds', 'double precision', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('queued', 'processing', 'completed', 'failed', 'timed_out')`),
    )
    .addColumn('target_status_code', 'integer')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('charged', 'numeric(12, 6)', (c) => c.notNull().defaultTo(0))
    .addColumn('result_bytes', 'integer')
    .addColumn('elapsed_ms', 'integer')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('result_expires_at', 'timestamptz')
    .execute();

  // "Jobs of key K in a time range" — the API's and the analysts' main question.
  await s
    .createIndex('scrape_jobs_key_created_idx')
    .on('scrape_jobs')
    .columns(['api_key_id', 'created_at'])
    .execute();
  await s.createIndex('scrape_jobs_created_idx').on('scrape_jobs').column('created_at').execute();
  // Unfinished jobs are few; a partial index keeps "what is still running" cheap at any history size.
  await s
    .createIndex('scrape_jobs_unfinished_idx')
    .on('scrape_jobs')
    .columns(['status', 'updated_at'])
    .where(sql.ref('status'), 'in', ['queued', 'processing'])
    .execute();

  await s
    .createTable('job_results')
    .addColumn('job_id', 'uuid', (c) =>
      c.primaryKey().references('omniscrape.scrape_jobs.id').onDelete('cascade'),
    )
    .addColumn('result', 'jsonb', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await s.createIndex('job_results_expires_idx').on('job_results').column('expires_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropSchema('omniscrape').ifExists().cascade().execute();
}
