import { Migrator } from 'kysely/migration';
import { inspect } from 'node:util';
import { migrations } from '../../migrations';
import { StartupFailure } from '../startup-failure';
import type { Db } from './schema';

const MIGRATION_TABLE_SCHEMA = 'omniscrape';

function migrator(db: Db): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations) },
    migrationTableSchema: MIGRATION_TABLE_SCHEMA,
  });
}

/**
 * Applies every pending migration; throws with the failing migration's name. Every path that
 * starts work on a database migrates first, so the server's version is checked here, once.
 */
export async function migrateToLatest(db: Db): Promise<string[]> {
  await assertSupportedPostgres(db);
  await db.schema.createSchema(MIGRATION_TABLE_SCHEMA).ifNotExists().execute();
  const { error, results } = await migrator(db).migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    const reason = error instanceof Error ? error.message : inspect(error);
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
export async function assertSupportedPostgres(db: Db, oldest = OLDEST_SUPPORTED_POSTGRES): Promise<void> {
  const row = await db
    .selectNoFrom((eb) => [
      eb.fn<string>('current_setting', [eb.val('server_version_num')]).as('num'),
      eb.fn<string>('current_setting', [eb.val('server_version')]).as('version'),
    ])
    .executeTakeFirst();
  if (!(Number(row?.num) >= oldest * 10_000)) {
    throw new StartupFailure(
      `the database runs Postgres ${row?.version}, and omniscrape needs Postgres ${oldest} or later: upgrade it, or point DATABASE_URL at a newer server`,
      'UNSUPPORTED_POSTGRES',
    );
  }
}

/** True when every known migration has been applied (what /readyz reports). */
export async function isMigrated(db: Db): Promise<boolean> {
  const all = await migrator(db).getMigrations();
  return all.every((m) => m.executedAt !== undefined);
}
