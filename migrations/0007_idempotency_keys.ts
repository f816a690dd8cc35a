import { Kysely, sql } from 'kysely';

/**
 * Idempotency keys of async submissions: per API key, the `Idempotency-Key` a client sent, a hash
 * of the request it came with, and the job or the batch it created. The primary key is what makes two
 * concurrent submissions with one key create one job: the second insert waits for the first's
 * commit and then fails, and that submission answers the first one's job. A key counts for 24 hours
 * (src/db/idempotency-keys.ts); the maintenance duty deletes older rows.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('omniscrape.idempotency_keys')
    .addColumn('api_key_id', 'uuid', (c) => c.notNull().references('omniscrape.api_keys.id'))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('job_id', 'uuid')
    .addColumn('batch_id', 'uuid')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('idempotency_keys_pkey', ['api_key_id', 'key'])
    .addCheckConstraint('idempotency_keys_one_target', sql`num_nonnulls(job_id, batch_id) = 1`)
    .execute();
  // The purge deletes by age.
  await db.schema
    .createIndex('idempotency_keys_created_at_idx')
    .on('omniscrape.idempotency_keys')
    .column('created_at')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('omniscrape.idempotency_keys').execute();
}
