#!/usr/bin/env node
import { Command } from 'commander';
import { purgeExpiredResults } from '../maintenance/result-purge';
import { config, failWith, positiveInt, print, withStore } from './common';
import { addApiCommands } from './api-commands';
import { addDatabaseCommands } from './database-commands';
import { addDoctorCommand } from './doctor-command';
import { addKeysCommands } from './keys-commands';
import { addReportCommand } from './report-command';
import { addReportingCommands } from './reporting-commands';
import { runRoles } from './run-roles';

const program = new Command()
  .name('omniscrape')
  .description(
    'Self-hosted web-scraping gateway whose async jobs run on Postgres alone.\nSettings come from the environment (see docs/operations.md).',
  )
  .showHelpAfterError();

program
  .command('serve')
  .description(
    'API + workers + scheduler in one process (what `npm start` runs), after migrating the database; embedded Postgres without DATABASE_URL',
  )
  .action(() => runRoles({ api: true, worker: true }, { allowEmbedded: true }));
const WAIT_FOR_MIGRATIONS =
  'with migrations pending, wait (polling) until `omniscrape migrate` has run, instead of exiting';
program
  .command('api')
  .description('the HTTP API only (needs DATABASE_URL and a migrated database)')
  .option('--wait-for-migrations', WAIT_FOR_MIGRATIONS)
  .action((options: { waitForMigrations?: boolean }) =>
    runRoles({ api: true, worker: false }, { waitForMigrations: options.waitForMigrations }),
  );
program
  .command('worker')
  .description(
    'scrape workers and the scheduled maintenance only (needs DATABASE_URL and a migrated database)',
  )
  .option('--wait-for-migrations', WAIT_FOR_MIGRATIONS)
  .action((options: { waitForMigrations?: boolean }) =>
    runRoles({ api: false, worker: true }, { waitForMigrations: options.waitForMigrations }),
  );

program
  .command('cleanup')
  .description('purge expired results now, in batches (the same duty the workers schedule)')
  .option('--batch-size <n>', 'rows deleted per batch', positiveInt)
  .action(async (options: { batchSize?: number }) => {
    const cfg = config();
    const deleted = await withStore(cfg, (store) =>
      purgeExpiredResults(store.db, {
        batchSize: options.batchSize ?? cfg.purgeBatchSize,
        onBatch: (n) => process.stderr.write(`\rpurged ${n} expired results…`),
      }),
    );
    process.stderr.write('\n');
    print(`purged ${deleted} expired results (job history kept)`);
  });

addApiCommands(program);
addDatabaseCommands(program);
addDoctorCommand(program);
addKeysCommands(program);
addReportCommand(program);
addReportingCommands(program);

program.parseAsync(process.argv).catch(failWith);
