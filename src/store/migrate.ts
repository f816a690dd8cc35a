import { sql, type Kysely } from 'kysely';
import { Migrator } from 'kysely/migration';
import { migrations } from '../../migrations';
import { StartupFailure } from '../startup-failure';

const MIGRATION_TABLE_SCHEMA = 'omniscrape';

function migrator(db: Kysely<any>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableSchema: MIGRATION_TABLE_SCHEMA,
  });
}

/**
 * Applies every pending migration; throws with the failing migration's name. Every path that
 * starts work on a database migrates first, so the server's version is checked here, once.
 */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  await assertSupportedPostgres(db);
  await db.schema.createSchema(MIGRATION_TABLE_SCHEMA).ifNotExists().execute();
  const { error, results } = await migrator(db).migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${reason}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * The oldest Postgres major version omniscrape runs on: pg-boss 12 requires 13 or later (its
 * README), and the migrations need 13 too (gen_random_uuid() is built in from 13; before it came
 * from the pgcrypto extension).
 */
export const OLDEST_SUPPORTED_POSTGRES = 13;

/** Refuses, with a StartupFailure naming both versions, a server older than `oldest` (a major version). */
export async function assertSupportedPostgres(
  db: Kysely<any>,
  oldest = OLDEST_SUPPORTED_POSTGRES,
): Promise<void> {
  const { rows } = await sql<{
    num: string;
    version: string;
  }>`select current_setting('server_version_num') as num, current_setting('server_version') as version`.execute(
    db,
  );
  const num = Number(rows[0]?.num);
  if (!(num >= oldest * 10_000)) {
    throw new StartupFailure(
      `the database runs Postgres ${rows[0]?.version}, and omniscrape needs Postgres ${oldest} or later: upgrade it, or point DATABASE_URL at a newer server`,
      'UNSUPPORTED_POSTGRES',
    );
  }
}

/** True when every known migration has been applied (what /readyz reports). */
export async function isMigrated(db: Kysely<any>): Promise<boolean> {
  const all = await migrator(db).getMigrations();
  return all.every((m) => m.executedAt !== undefined);
}
