#!/usr/bin/env node
import { Command } from 'commander';
import { createBoss, ensureQueues } from '../jobs/queue';
import { directDatabaseUrl } from '../config';
import { createLogger } from '../logger';
import { purgeExpiredResults } from '../maintenance/result-purge';
import { migrateToLatest } from '../store/migrate';
import { openStore } from '../store/pool';
import { config, connecting, databaseUrlFor, failWith, positiveInt, print, withStore } from './common';
import { addKeysCommands } from './keys-commands';
import { addReportCommand } from './report-command';
import { addReportingCommands } from './reporting-commands';
import { runRoles } from './run-roles';

const program = new Command()
  .name('omniscrape')
  .description(
    'Self-hosted web-scraping gateway whose async jobs run on Postgres alone.\nSettings come from the environment (see README).',
  )
  .showHelpAfterError();

program
  .command('serve')
  .description(
    'API + workers + scheduler in one process (what `npm start` runs); embedded Postgres without DATABASE_URL',
  )
  .action(() => runRoles({ api: true, worker: true }, true));
program
  .command('api')
  .description('the HTTP API only (needs DATABASE_URL)')
  .action(() => runRoles({ api: true, worker: false }, false));
program
  .command('worker')
  .description('scrape workers and the scheduled maintenance only (needs DATABASE_URL)')
  .action(() => runRoles({ api: false, worker: true }, false));

program
  .command('migrate')
  .description("apply the project's migrations and install pg-boss's queue tables")
  .action(async () => {
    const cfg = config();
    // DDL and the session lock of the deferred steps: never through a transaction-mode pooler.
    const url = directDatabaseUrl(cfg, databaseUrlFor(cfg));
    const setting = cfg.databaseUrl && cfg.directDatabaseUrl ? 'OMNISCRAPE_DIRECT_DATABASE_URL' : undefined;
    const store = openStore(url, { max: 2, applicationName: 'omniscrape-cli' });
    const boss = createBoss(cfg, url, 'admin');
    // pg-boss also reports through this event what its start() then throws; the throw is what
    // ends the command (one line), so the event is only logged, for debugging.
    const logger = createLogger(cfg);
    boss.on('error', (err) => logger.debug({ err }, 'pg-boss error during migrate'));
    try {
      const applied = await connecting(url, () => migrateToLatest(store.db), setting);
      print(applied.length ? `applied: ${applied.join(', ')}` : 'omniscrape tables: up to date');
      await connecting(
        url,
        async () => {
          await boss.start();
          await ensureQueues(boss, cfg);
        },
        setting,
      );
      print('pg-boss queue tables: installed and up to date');
    } finally {
      await boss.stop({ graceful: false });
      await store.close();
    }
  });

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

addKeysCommands(program);
addReportCommand(program);
addReportingCommands(program);

program.parseAsync(process.argv).catch(failWith);
