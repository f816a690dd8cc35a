import { sql } from 'kysely';
import type { MigrationResultSet } from 'kysely/migration';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import { deferredSteps } from '../../migrations';
import { StartupFailure } from '../startup-failure';
import { openStore } from '../db/pool';
import { MIGRATION_TABLE_SCHEMA, migrator, pendingMigrations } from '../db/migration-state';
import type { Db } from '../db/schema';

/**
 * How long each statement of a migration waits for a lock before the migration rolls back and is
 * tried again. DDL takes an exclusive lock on its table, and while it waits for it (behind a long
 * report, say) every later query of that table queues behind it: a short wait and another try
 * keep that queue to a moment.
 */
export const MIGRATION_LOCK_TIMEOUT_MS_DEFAULT = 200;
/** Tries before migrateToLatest gives up on a lock; the pause between them doubles up to MAX. */
export const MIGRATION_ATTEMPTS_DEFAULT = 10;
export const MIGRATION_RETRY_PAUSE_MS_DEFAULT = 1_000;
const MIGRATION_RETRY_PAUSE_MS_MAX = 8_000;

export interface MigrateOptions {
  lockTimeoutMs?: number;
  attempts?: number;
  retryPauseMs?: number;
}

/**
 * Applies every pending migration, then the steps they left to run after their commit (see
 * runDeferredSteps); throws with the failing migration's or step's name. Returns the names of what
 * it applied. Every path that starts work on a database migrates first, so the server's version is
 * checked here, once.
 */
export async function migrateToLatest(db: Db, options: MigrateOptions = {}): Promise<string[]> {
  await assertSupportedPostgres(db);
  // With none pending, no DDL at all (even CREATE SCHEMA IF NOT EXISTS needs the CREATE right):
  // the commands that migrate first then work as a runtime role on a current database.
  if ((await pendingMigrations(db)).length === 0) return runDeferredSteps(db);
  await db.schema.createSchema(MIGRATION_TABLE_SCHEMA).ifNotExists().execute();
  const { error, results } = await applyMigrations(db, options);
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    const reason = error instanceof Error ? error.message : inspect(error);
    const hint = isLockTimeout(error)
      ? `, ${options.attempts ?? MIGRATION_ATTEMPTS_DEFAULT} times: a long transaction holds a lock on its table (pg_stat_activity shows which); run it again once that has ended`
      : '';
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${reason}${hint}`);
  }
  const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  return [...applied, ...(await runDeferredSteps(db))];
}

/**
 * Kysely's Migrator, on one connection whose lock waits are bounded (MIGRATION_LOCK_TIMEOUT_MS):
 * all pending migrations run in one transaction, so a lock timeout rolls them all back, and they
 * are tried again after a pause. No statement timeout: a team's default one must not cut a
 * migration short.
 */
async function applyMigrations(db: Db, options: MigrateOptions): Promise<MigrationResultSet> {
  const lockTimeout = `${options.lockTimeoutMs ?? MIGRATION_LOCK_TIMEOUT_MS_DEFAULT}ms`;
  const attempts = options.attempts ?? MIGRATION_ATTEMPTS_DEFAULT;
  let pause = options.retryPauseMs ?? MIGRATION_RETRY_PAUSE_MS_DEFAULT;
  for (let attempt = 1; ; attempt++) {
    const outcome = await db
      .connection()
      .execute((conn) =>
        withSessionSettings(conn, { lock_timeout: lockTimeout, statement_timeout: '0' }, () =>
          migrator(conn).migrateToLatest(),
        ),
      );
    if (!isLockTimeout(outcome.error) || attempt >= attempts) return outcome;
    await sleep(pause);
    pause = Math.min(pause * 2, MIGRATION_RETRY_PAUSE_MS_MAX);
  }
}

/**
 * Runs `fn` with `settings` on the connection `conn` is bound to, and puts the session's own values
 * back after (the connection returns to a pool).
 */
async function withSessionSettings<T>(
  conn: Db,
  settings: Record<string, string>,
  fn: () => Promise<T>,
): Promise<T> {
  for (const [name, value] of Object.entries(settings))
    await sql`select set_config(${name}, ${value}, false)`.execute(conn);
  try {
    return await fn();
  } finally {
    for (const name of Object.keys(settings))
      await sql`reset ${sql.raw(name)}`.execute(conn).catch(() => undefined);
  }
}

/** Postgres's lock_not_available: a lock_timeout ran out. */
const isLockTimeout = (error: unknown) => (error as { code?: string } | undefined)?.code === '55P03';

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
      // A backfill or an index built over a large history may outlast a team's statement_timeout.
      return await withSessionSettings(conn, { statement_timeout: '0' }, async () => {
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
      });
    } finally {
      await sql`select pg_advisory_unlock(${DEFERRED_STEPS_LOCK})`.execute(conn);
    }
  });
}

/**
 * The oldest Postgres major version omniscrape runs on. pg-boss 12 requires 13 (its README; its SQL
 * avoids what 14 added, such as date_bin), and so do the migrations: gen_random_uuid() is built in
 * from 13 (before, it came from the pgcrypto extension), and migration 0010 sets
 * autovacuum_vacuum_insert_scale_factor, new in 13. Everything else the SQL uses (INCLUDE indexes,
 * hashtextextended, identity columns, percentile_cont, MATERIALIZED CTEs) is from 12 or older.
 */
export const OLDEST_SUPPORTED_POSTGRES = 13;

/** The server's version: `server_version_num` (150014) and `server_version` ("15.14 (Debian …)"). */
export interface ServerVersion {
  num: number;
  text: string;
}

export async function readServerVersion(db: Db): Promise<ServerVersion> {
  const row = await db
    .selectNoFrom((eb) => [
      eb.fn<string>('current_setting', [eb.val('server_version_num')]).as('num'),
      eb.fn<string>('current_setting', [eb.val('server_version')]).as('text'),
    ])
    .executeTakeFirstOrThrow();
  return { num: Number(row.num), text: row.text };
}

/** Why a server older than `oldest` (a major version) cannot run omniscrape, in one line; else undefined. */
export function unsupportedPostgres(
  version: ServerVersion,
  oldest = OLDEST_SUPPORTED_POSTGRES,
): string | undefined {
  if (version.num >= oldest * 10_000) return undefined;
  return `the database runs Postgres ${version.text}, and omniscrape needs Postgres ${oldest} or later: upgrade it, or point DATABASE_URL at a newer server`;
}

/** Refuses, with a StartupFailure naming both versions, a server older than `oldest`. */
export async function assertSupportedPostgres(db: Db, oldest = OLDEST_SUPPORTED_POSTGRES): Promise<void> {
  const problem = unsupportedPostgres(await readServerVersion(db), oldest);
  if (problem) throw new StartupFailure(problem, 'UNSUPPORTED_POSTGRES');
}
