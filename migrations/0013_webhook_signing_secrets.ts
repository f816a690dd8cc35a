import { Kysely, sql } from 'kysely';

/**
 * Webhook signing secrets of their own, kept sealed (src/sealed-secrets.ts: AES-256-GCM under
 * OMNISCRAPE_SECRETS_KEY, which the database never holds), so that what the database holds signs
 * nothing.
 *
 * `key_webhook_secrets`: a key's secrets, one row each. The row whose `retires_at` is NULL is the
 * key's current secret (at most one, by the partial unique index); a row replaced by a rotation
 * signs on until its `retires_at`. Keys older than this migration get theirs when first needed (a
 * delivery, `omniscrape keys webhook-secret`): the migration cannot seal, since it may run without
 * the secrets key.
 *
 * `job_webhooks.sealed_secret`: a submission's own `webhook.secret`, sealed, when the service has
 * a secrets key (`secret` then stays NULL). Added without a default: catalog only.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('omniscrape.key_webhook_secrets')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('api_key_id', 'uuid', (c) =>
      c.notNull().references('omniscrape.api_keys.id').onDelete('cascade'),
    )
    .addColumn('sealed_secret', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('retires_at', 'timestamptz')
    .execute();
  // online: the table is created above, so empty
  await db.schema
    .createIndex('key_webhook_secrets_current_idx')
    .on('omniscrape.key_webhook_secrets')
    .column('api_key_id')
    .unique()
    .where(sql.ref('retires_at'), 'is', null)
    .execute();
  // online: the table is created above, so empty
  await db.schema
    .createIndex('key_webhook_secrets_api_key_id_idx')
    .on('omniscrape.key_webhook_secrets')
    .column('api_key_id')
    .execute();
  await db.schema.alterTable('omniscrape.job_webhooks').addColumn('sealed_secret', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('omniscrape.job_webhooks').dropColumn('sealed_secret').execute();
  await db.schema.dropTable('omniscrape.key_webhook_secrets').execute();
}
