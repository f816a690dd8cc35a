import { setTimeout as sleep } from 'node:timers/promises';
import type { PgBoss } from 'pg-boss';
import type { Config } from '../config';
import { createBoss, ensureQueues, PGBOSS_SCHEMA, PGBOSS_SCHEMA_VERSION } from '../jobs/queue';
import type { Logger } from '../logger';
import { ensureMaintenanceQueues } from '../maintenance/maintenance';
import { StartupFailure } from '../startup-failure';
import { pendingMigrations } from '../db/migration-state';
import { assertSupportedPostgres, migrateToLatest } from './migrate';
import { openStore } from '../db/pool';
import { currentRole, installedQueueSchemaVersion, runCommands } from './admin-queries';
import type { Db } from '../db/schema';

/** How often `api` and `worker` started with --wait-for-migrations look again. */
export const MIGRATION_POLL_MS = 2_000;
/** How often migrateDatabase looks whether pg-boss's index builds are done. */
const INDEX_BUILD_POLL_MS = 500;

export interface MigrationReport {
  /** omniscrape's migrations (and deferred steps) applied now, by name. */
  applied: string[];
  /** What pg-boss's schema needed: created, migrated from an older version, or nothing. */
  queueSchema: 'installed' | 'migrated' | 'current';
  /** pg-boss's bloated job indexes rebuilt now. */
  rebuiltIndexes: number;
}

/**
 * Brings a database to what this release runs on: omniscrape's migrations, pg-boss's schema
 * (installed or migrated, with the index builds its migrations leave to run after), the queues,
 * and a rebuild of pg-boss's bloated indexes. The only place anything runs DDL: `omniscrape
 * migrate` and the start of `serve`, with the owner role's URL (OMNISCRAPE_MIGRATION_DATABASE_URL).
 * `api` and `worker` run as a role that may not, and only check (pendingDatabaseMigrations).
 */
export async function migrateDatabase(
  config: Config,
  databaseUrl: string,
  logger: Logger,
): Promise<MigrationReport> {
  const store = openStore(databaseUrl, { max: 2, applicationName: 'omniscrape-migrate' });
  const boss = createBoss(config, databaseUrl, 'admin');
  // pg-boss also reports through this event what its start() then throws; the throw is what ends
  // the command (one line), so the event is only logged, for debugging.
  boss.on('error', (err) => logger.debug({ err }, 'pg-boss error while migrating'));
  try {
    const applied = await migrateToLatest(store.db);
    const before = await installedQueueSchemaVersion(store.db, PGBOSS_SCHEMA);
    await boss.start();
    await ensureQueues(boss, config);
    await ensureMaintenanceQueues(boss);
    await finishQueueIndexBuilds(boss);
    const rebuiltIndexes = await rebuildBloatedQueueIndexes(boss, store.db);
    const queueSchema =
      before === null ? 'installed' : before < PGBOSS_SCHEMA_VERSION ? 'migrated' : 'current';
    return { applied, queueSchema, rebuiltIndexes };
  } finally {
    await boss.stop({ graceful: false });
    await store.close();
  }
}

/**
 * Waits for the index builds pg-boss's migrations queue (its "BAM" commands, CREATE INDEX
 * CONCURRENTLY after the migration commits). Only an instance that migrates runs them, and the
 * service's never do, so this one sees them through; one that failed fails the migration.
 */
async function finishQueueIndexBuilds(boss: PgBoss): Promise<void> {
  const count = (status: string, rows: { status: string; count: number }[]) =>
    rows.find((r) => r.status === status)?.count ?? 0;
  for (;;) {
    const rows = await boss.getBamStatus();
    if (count('pending', rows) + count('in_progress', rows) === 0) {
      const failed = count('failed', rows);
      if (failed > 0)
        throw new Error(
          `pg-boss could not build ${failed} of its indexes (see ${PGBOSS_SCHEMA}.bam where status = 'failed'); run omniscrape migrate again to retry`,
        );
      return;
    }
    await sleep(INDEX_BUILD_POLL_MS);
  }
}

/**
 * REINDEX CONCURRENTLY of pg-boss's bloated job indexes. A worker's pg-boss does it itself only as
 * their owner; under a runtime role it logs a warning instead, and this (as the owner) does it.
 */
async function rebuildBloatedQueueIndexes(boss: PgBoss, db: Db): Promise<number> {
  const commands = await boss.getReindexCommands();
  await runCommands(db, commands);
  return commands.filter((c) => /^\s*reindex/i.test(c)).length;
}

/**
 * What keeps this release from running on the database, one entry each: omniscrape's pending
 * migrations by name, and pg-boss's schema when it is missing or at another version. Empty: ready.
 * Reads only; a role without the runtime grants is told which command gives them.
 */
export async function pendingDatabaseMigrations(db: Db): Promise<string[]> {
  await assertSupportedPostgres(db);
  try {
    const queueSchema = await pendingQueueSchema(db);
    return [...(await pendingMigrations(db)), ...(queueSchema ? [queueSchema] : [])];
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err;
    const role = (await currentRole(db)) ?? 'ROLE';
    throw new StartupFailure(
      `role "${role}" may not use the service's tables (${(err as Error).message}): run \`omniscrape db grant-runtime ${role} --apply\` as the owner role`,
      'MISSING_GRANTS',
      { cause: err },
    );
  }
}

/** What pg-boss's schema lacks for this release (missing, older, newer), or undefined: current. */
export async function pendingQueueSchema(db: Db): Promise<string | undefined> {
  const installed = await installedQueueSchemaVersion(db, PGBOSS_SCHEMA);
  if (installed === null) return 'pg-boss schema (not installed)';
  if (installed < PGBOSS_SCHEMA_VERSION) return `pg-boss schema ${installed} → ${PGBOSS_SCHEMA_VERSION}`;
  if (installed > PGBOSS_SCHEMA_VERSION)
    return `pg-boss schema ${installed}, newer than this release's ${PGBOSS_SCHEMA_VERSION}`;
  return undefined;
}

/**
 * Resolves once nothing is pending (pendingDatabaseMigrations), looking every MIGRATION_POLL_MS;
 * `onWaiting` hears what is pending the first time, and whenever that changes. Missing runtime
 * grants are waited for too: on a first deploy they follow the migrations that create the tables.
 */
export async function waitForMigrations(db: Db, onWaiting: (pending: string[]) => void): Promise<void> {
  let said = '';
  for (;;) {
    const pending = await pendingDatabaseMigrations(db).catch((err: unknown) => {
      if (err instanceof StartupFailure && err.code === 'MISSING_GRANTS') return [err.message];
      throw err;
    });
    if (pending.length === 0) return;
    if (pending.join() !== said) onWaiting(pending);
    said = pending.join();
    await sleep(MIGRATION_POLL_MS);
  }
}
