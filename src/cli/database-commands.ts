import type { Command } from 'commander';
import type { Config } from '../config';
import { migrateDatabase, type MigrationReport } from '../database-setup';
import { PGBOSS_SCHEMA_VERSION } from '../jobs/queue';
import { createLogger } from '../logger';
import { config, connecting, databaseUrlFor, print } from './common';

/** The owner role's URL for DDL, and the variable it came from (named when it fails). */
export function migrationUrlFor(cfg: Config): { url: string; setting?: string } {
  if (cfg.migrationDatabaseUrl)
    return { url: cfg.migrationDatabaseUrl, setting: 'OMNISCRAPE_MIGRATION_DATABASE_URL' };
  return { url: databaseUrlFor(cfg) };
}

function describeQueueSchema(report: MigrationReport): string {
  if (report.queueSchema === 'installed') return `installed (schema ${PGBOSS_SCHEMA_VERSION})`;
  if (report.queueSchema === 'migrated') return `migrated to schema ${PGBOSS_SCHEMA_VERSION}`;
  return 'up to date';
}

/** `migrate`: what the owner role runs, so the service's role needs less. */
export function addDatabaseCommands(program: Command): void {
  program
    .command('migrate')
    .description(
      "apply omniscrape's migrations and install or migrate pg-boss's queue tables, as the owner role (OMNISCRAPE_MIGRATION_DATABASE_URL, else DATABASE_URL)",
    )
    .action(async () => {
      const cfg = config();
      const { url, setting } = migrationUrlFor(cfg);
      const report = await connecting(url, () => migrateDatabase(cfg, url, createLogger(cfg)), setting);
      print(
        report.applied.length ? `applied: ${report.applied.join(', ')}` : 'omniscrape tables: up to date',
      );
      print(`pg-boss queue tables: ${describeQueueSchema(report)}`);
      if (report.rebuiltIndexes > 0) print(`pg-boss indexes rebuilt: ${report.rebuiltIndexes}`);
    });
}
