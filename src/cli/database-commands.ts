import type { Command } from 'commander';
import { directDatabaseUrl, type Config } from '../config';
import { migrateDatabase, pendingDatabaseMigrations, type MigrationReport } from '../admin/database-setup';
import { PGBOSS_SCHEMA, PGBOSS_SCHEMA_VERSION } from '../jobs/queue';
import { createLogger } from '../logger';
import { openStore } from '../db/pool';
import {
  checkRuntimeRole,
  grantRuntime,
  runtimeGrants,
  runtimeSchemas,
  schemaOwners,
} from '../admin/runtime-role';
import { config, connecting, databaseUrlFor, fail, print } from './common';

/** Longest role name Postgres keeps whole (NAMEDATALEN - 1 bytes). */
const MAX_ROLE_NAME_BYTES = 63;

/**
 * The owner role's URL for DDL, and the variable it came from (named when it fails). Without one,
 * the direct connection: migrations hold session locks, which a transaction pooler would lose.
 */
export function migrationUrlFor(cfg: Config): { url: string; setting?: string } {
  if (cfg.migrationDatabaseUrl)
    return { url: cfg.migrationDatabaseUrl, setting: 'OMNISCRAPE_MIGRATION_DATABASE_URL' };
  const url = databaseUrlFor(cfg);
  const direct = directDatabaseUrl(cfg, url);
  return direct === url ? { url } : { url: direct, setting: 'OMNISCRAPE_DIRECT_DATABASE_URL' };
}

function describeQueueSchema(report: MigrationReport): string {
  if (report.queueSchema === 'installed') return `installed (schema ${PGBOSS_SCHEMA_VERSION})`;
  if (report.queueSchema === 'migrated') return `migrated to schema ${PGBOSS_SCHEMA_VERSION}`;
  return 'up to date';
}

/** `migrate` and `db grant-runtime`: what the owner role runs, so the service's role needs less. */
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

  const db = program
    .command('db')
    .description('database roles: what the owner role grants the role `api` and `worker` run as')
    .showHelpAfterError(false)
    .showSuggestionAfterError(false)
    .configureOutput({ outputError: (text, write) => write(`omniscrape: ${text.replace(/^error: /, '')}`) });
  db.command('grant-runtime')
    .argument('<role>', 'the Postgres role `api` and `worker` connect as (DATABASE_URL)')
    .description(
      "print the grants that let a role run `api` and `worker` (rows of omniscrape's and pg-boss's tables, no DDL); --apply runs them",
    )
    .option(
      '--apply',
      'run them now, as the owner role (OMNISCRAPE_MIGRATION_DATABASE_URL, else DATABASE_URL)',
    )
    .action(async (role: string, options: { apply?: boolean }) => {
      if (role.trim() === '' || Buffer.byteLength(role) > MAX_ROLE_NAME_BYTES)
        fail(`the role name must be 1 to ${MAX_ROLE_NAME_BYTES} bytes long`);
      const cfg = config();
      const { url, setting } = migrationUrlFor(cfg);
      const store = openStore(url, { max: 1, applicationName: 'omniscrape-cli' });
      try {
        const statements = await connecting(url, () => grantsFor(store.db, role), setting);
        if (!options.apply) {
          print(
            `-- the grants of role "${role}" for \`omniscrape api\` and \`worker\`; run as the owner role`,
          );
          for (const statement of statements) print(`${statement};`);
          return;
        }
        await grantRuntime(store.db, statements).catch((err: unknown) => {
          if ((err as { code?: string }).code === '42704')
            fail(`no role named "${role}": create it first (create role ${role} login password '…')`);
          throw err;
        });
        const { missing, excess } = await checkRuntimeRole(store.db, role, PGBOSS_SCHEMA);
        if (missing.length > 0) fail(`role "${role}" still lacks ${missing.join(', ')}`);
        print(
          `role "${role}" may now run api and worker: ${statements.length} grants applied; later migrations' objects are covered by default privileges`,
        );
        if (excess.length > 0)
          print(`note: role "${role}" may also do what it needs not: ${excess.join(', ')}`);
      } finally {
        await store.close();
      }
    });
}

/** runtimeGrants for the database as it is; refuses one not migrated yet (the schemas must exist). */
async function grantsFor(
  db: Parameters<typeof pendingDatabaseMigrations>[0],
  role: string,
): Promise<string[]> {
  const pending = await pendingDatabaseMigrations(db);
  if (pending.length > 0)
    fail(`the database has pending migrations (${pending.join(', ')}): run \`omniscrape migrate\` first`);
  const owners = await schemaOwners(db, PGBOSS_SCHEMA);
  const absent = runtimeSchemas(PGBOSS_SCHEMA).filter((s) => !owners[s]);
  if (absent.length > 0) fail(`schema ${absent.join(', ')} does not exist: run \`omniscrape migrate\` first`);
  return runtimeGrants(role, PGBOSS_SCHEMA, owners);
}
