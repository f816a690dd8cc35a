import { Kysely, sql } from 'kysely';

/**
 * Admin keys and the dashboard's sign-in sessions. `is_admin` is added with a constant default,
 * which Postgres (11+) records in the catalog without rewriting the table. A session row holds only
 * the SHA-256 digest of its random token (the cookie holds the token), so a read of this table
 * cannot sign anyone in; a session works only while its key is unrevoked and an admin key
 * (src/db/dashboard-sessions.ts checks both on every request).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('omniscrape.api_keys')
    .addColumn('is_admin', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  await db.schema
    .createTable('omniscrape.dashboard_sessions')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('api_key_id', 'uuid', (c) =>
      c.notNull().references('omniscrape.api_keys.id').onDelete('cascade'),
    )
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
  // Each sign-in deletes the expired sessions.
  await db.schema
    .createIndex('dashboard_sessions_expires_at_idx')
    .on('omniscrape.dashboard_sessions')
    .column('expires_at')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('omniscrape.dashboard_sessions').execute();
  await db.schema.alterTable('omniscrape.api_keys').dropColumn('is_admin').execute();
}
