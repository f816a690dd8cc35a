import { Migrator } from 'kysely/migration';
import { migrations } from '../../migrations';
import type { Db } from './schema';

// Which of omniscrape's migrations the database has: read at run time (/readyz, --wait-for-migrations)
// as well as by `omniscrape migrate` (admin/migrate.ts), which applies them.

/** The schema of Kysely's migration table. */
export const MIGRATION_TABLE_SCHEMA = 'omniscrape';

export function migrator(db: Db): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations) },
    migrationTableSchema: MIGRATION_TABLE_SCHEMA,
  });
}

/** The migrations not applied yet, by name, in order. Reads only: any role with the runtime grants may ask. */
export async function pendingMigrations(db: Db): Promise<string[]> {
  const all = await migrator(db).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}

/** True when every known migration has been applied (what /readyz reports). */
export async function isMigrated(db: Db): Promise<boolean> {
  return (await pendingMigrations(db)).length === 0;
}
