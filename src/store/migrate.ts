import { sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import { inspect } from 'node:util';
import { deferredSteps, migrations } from '../../migrations';
import { StartupFailure } from '../startup-failure';
import { openStore } from './pool';
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
 * Applies every pending migration, then the steps they left to run after their commit (see
 * runDeferredSteps); throws with the failing migration's or step's name. Returns the names of what
 * it applied. Every path that starts work on a database migrates first, so the server's version is
 * checked here, once.
 */
export async function migrateToLatest(db: Db): Promise<string[]> {
  await assertSupportedPostgres(db);
  // With none pending, no DDL at all (even CREATE SCHEMA IF NOT EXISTS needs the CREATE right):
  // the commands that migrate first then work as a runtime role on a current database.
  if ((await pendingMigrations(db)).length === 0) return runDeferredSteps(db);
  await db.schema.createSchema(MIGRATION_TABLE_SCHEMA).ifNotExists().execute();
  const { error, results } = await migrator(db).migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    const reason = error instanceof Error ? error.message : inspect(error);
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${reason}`);
  }
  const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  return [...applied, ...(await runDeferredSteps(db))];
}

/** A process's connections: `pooled` may go through a transaction-mode pooler, `direct` never does. */
export interface DatabaseUrls {
  pooled: string;
  direct: string;
}

/**
 * migrateToLatest for a process whose `db` (a pool to `urls.pooled`) may go through a
 * transaction-mode pooler, where consecutive statements of one connection may reach different
 * sessions: the migrations and the session lock of their deferred steps then run on a small pool
 * of their own to the direct connection, closed after.
 */
export async function migrateToLatestOver(db: Db, urls: DatabaseUrls): Promise<string[]> {
  if (urls.direct === urls.pooled) return migrateToLatest(db);
  const direct = openStore(urls.direct, { max: 2, applicationName: 'omniscrape-migrate' });
  try {
    return await migrateToLatest(direct.db);
  } finally {
    await direct.close();
  }
}

/** The migrations not applied yet, by name, in order. Reads only: any role with the runtime grants may ask. */
export async function pendingMigrations(db: Db): Promise<string[]> {
  const all = await migrator(db).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}

/** The session advisory lock that lets one process at a time run the deferred steps. */
export const DEFERRED_STEPS_LOCK = 73_410_010;

/**
 * Runs the pending deferred steps (`omniscrape.deferred_steps`), in name order, each outside any
 * transaction on one connection, and marks each done. One process runs them: a process that finds
 * another one at it goes on without waiting (the service works before they are done; they only
 * fill in and speed up). A step this release does not know (a newer one's) is left pending.
 */
export async function runDeferredSteps(db: Db): Promise<string[]> {
  const pending = (executor: Db) =>
    executor
      .selectFrom('omniscrape.deferred_steps')
      .select('name')
      .where('done_at', 'is', null)
      .orderBy('name')
      .execute();
  if ((await pending(db)).length === 0) return [];
  return db.connection().execute(async (conn) => {
    const { rows } = await sql<{
      locked: boolean;
    }>`select pg_try_advisory_lock(${DEFERRED_STEPS_LOCK}) as locked`.execute(conn);
    if (!rows[0]?.locked) return [];
    try {
      const done: string[] = [];
      for (const { name } of await pending(conn)) {
        const step = deferredSteps[name];
        if (!step) continue;
        await step(conn).catch((err: unknown) => {
          throw new Error(
            `deferred migration step "${name}" failed: ${(err as Error)?.message ?? inspect(err)}`,
          );
        });
        await conn
          .updateTable('omniscrape.deferred_steps')
          .set({ done_at: sql`now()` })
          .where('name', '=', name)
          .execute();
        done.push(name);
      }
      return done;
    } finally {
      await sql`select pg_advisory_unlock(${DEFERRED_STEPS_LOCK})`.execute(conn);
    }
  });
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
  return (await pendingMigrations(db)).length === 0;
}
