#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config';
import { isDatabaseUnavailable } from '../errors';
import { createBoss, ensureQueues } from '../jobs/queue';
import { createLogger } from '../logger';
import { purgeExpiredResults } from '../maintenance/result-purge';
import { startService, type ServiceRoles } from '../service';
import {
  generateApiKey,
  insertApiKey,
  listApiKeys,
  revokeApiKey,
  updateApiKeyLimits,
} from '../store/api-keys';
import { migrateToLatest } from '../store/migrate';
import { openStore, type Store } from '../store/pool';
import {
  LOCAL_KEY_NAME,
  localApiKey,
  POSTGRES_PASSWORD_FILE,
  runningLocalPostgresUrl,
  startLocalPostgres,
} from './local-mode';
import { assertCanListen, explainStartupError } from './startup-errors';

const print = (line = '') => process.stdout.write(line + '\n');
/** Ends the command with one line on stderr (`omniscrape: …`) and exit code 1. */
const fail = (message: string): never => {
  process.stderr.write(`omniscrape: ${message}\n`);
  process.exit(1);
};

/**
 * The end of every command that failed: one line. A failure we recognise (StartupFailure, or an
 * error explainStartupError knows) says its cause and way out; anything else is a bug or a case
 * not foreseen, whose message is still one line, and whose stack OMNISCRAPE_LOG_LEVEL=debug shows.
 */
function failWith(err: unknown): never {
  const explained = explainStartupError(err);
  const debug = ['debug', 'trace'].includes(process.env.OMNISCRAPE_LOG_LEVEL ?? '');
  if (debug) process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  if (explained) return fail(explained.message);
  const message = err instanceof Error ? err.message : String(err);
  return fail(`${message.split('\n')[0]}${debug ? '' : ' (OMNISCRAPE_LOG_LEVEL=debug shows where)'}`);
}

/** Runs the first contact with a database; its failures come out explained, naming the server (never the password). */
async function connecting<T>(databaseUrl: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw explainStartupError(err, { databaseUrl }) ?? err;
  }
}

function config(): Config {
  try {
    return loadConfig();
  } catch (err) {
    // Not logged: there is no logger before the settings are read, and the message names each bad one.
    return fail(
      err instanceof ConfigError
        ? err.message.replace(/:?\n\s+/g, (m) => (m.startsWith(':') ? ': ' : '; '))
        : String(err),
    );
  }
}

/** DATABASE_URL, else the embedded Postgres of a running `npm start` in this checkout. */
function databaseUrlFor(cfg: Config): string {
  return (
    cfg.databaseUrl ??
    runningLocalPostgresUrl(cfg) ??
    fail('DATABASE_URL is not set, and no embedded Postgres from `npm start` is running in this folder.')
  );
}

async function withStore<T>(cfg: Config, fn: (store: Store) => Promise<T>): Promise<T> {
  const url = databaseUrlFor(cfg);
  const store = openStore(url, { max: 2, applicationName: 'omniscrape-cli' });
  try {
    await connecting(url, () => migrateToLatest(store.db));
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function run(roles: ServiceRoles, allowEmbedded: boolean): Promise<void> {
  const cfg = config();
  const logger = createLogger(cfg);
  let embedded: Awaited<ReturnType<typeof startLocalPostgres>> | undefined;
  let printedKey: string | undefined;
  if (roles.api) await assertCanListen(cfg.host, cfg.port);
  if (!cfg.databaseUrl) {
    if (!allowEmbedded)
      fail('DATABASE_URL is required for this role (only `serve` starts an embedded Postgres).');
    logger.info({ dataDir: cfg.dataDir }, 'no DATABASE_URL: starting the embedded Postgres');
    embedded = await startLocalPostgres(cfg, (line) => logger.warn(line));
  }
  const databaseUrl = cfg.databaseUrl ?? embedded!.url;
  let service: Awaited<ReturnType<typeof startService>>;
  try {
    if (embedded && cfg.apiKeys.length === 0) {
      printedKey = localApiKey(cfg);
      cfg.apiKeys = [{ name: LOCAL_KEY_NAME, key: printedKey }];
    }
    // A port taken since assertCanListen makes startService reject (EADDRINUSE), explained like the rest.
    service = await connecting(databaseUrl, () => startService(cfg, databaseUrl, roles, logger));
  } catch (err) {
    // The embedded Postgres must not outlive a failed start; a failure to stop it is logged, and
    // the start-up failure (the cause) is what the user is told.
    await embedded
      ?.stop()
      .catch((stopErr) =>
        logger.error({ err: stopErr }, 'stopping the embedded Postgres after a failed start failed'),
      );
    throw err;
  }
  const roleNames = Object.entries(roles)
    .filter(([, on]) => on)
    .map(([name]) => name)
    .join(' + ');
  logger.info({ roles: roleNames, port: service.port }, 'omniscrape started');
  if (embedded) {
    print('');
    print(`  omniscrape is running (${roleNames}) on an embedded Postgres.`);
    if (service.port) print(`  API:          http://localhost:${service.port}`);
    // The password stays in its mode-600 file: terminals are logged and shared more than files are.
    print(
      `  DATABASE_URL: ${urlWithoutPassword(embedded.url)}   (password in ${cfg.dataDir}/${POSTGRES_PASSWORD_FILE})`,
    );
    if (printedKey)
      print(`  API key:      ${printedKey}   (name "${LOCAL_KEY_NAME}", kept in ${cfg.dataDir}/)`);
    print('');
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // Postgres may go away mid-shutdown (a server stopped at the same time, or an embedded one
    // signalled from outside); its connections' errors are expected now and must not crash the
    // orderly stop. They are logged without a stack: the stack of a lost connection says nothing.
    process.on('uncaughtException', (err) => {
      if (isDatabaseUnavailable(err))
        return logger.warn({ err: err.message }, 'Postgres went away during shutdown');
      logger.fatal({ err }, 'uncaught exception during shutdown');
      process.exit(1);
    });
    logger.info(
      { signal, graceSeconds: cfg.shutdownGraceSeconds },
      'stopping: no new jobs are claimed, in-flight scrapes may finish',
    );
    try {
      await service.stop();
      await embedded?.stop();
      logger.info('stopped');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

function urlWithoutPassword(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.password = '';
  return url.toString();
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of 1 or more');
  return n;
}

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
  .action(() => run({ api: true, worker: true }, true));
program
  .command('api')
  .description('the HTTP API only (needs DATABASE_URL)')
  .action(() => run({ api: true, worker: false }, false));
program
  .command('worker')
  .description('scrape workers and the scheduled result purge only (needs DATABASE_URL)')
  .action(() => run({ api: false, worker: true }, false));

program
  .command('migrate')
  .description("apply the project's migrations and install pg-boss's queue tables")
  .action(async () => {
    const cfg = config();
    const url = databaseUrlFor(cfg);
    const store = openStore(url, { max: 2, applicationName: 'omniscrape-cli' });
    const boss = createBoss(cfg, url, 'admin');
    // pg-boss also reports through this event what its start() then throws; the throw is what
    // ends the command (one line), so the event is only logged, for debugging.
    const logger = createLogger(cfg);
    boss.on('error', (err) => logger.debug({ err }, 'pg-boss error during migrate'));
    try {
      const applied = await connecting(url, () => migrateToLatest(store.db));
      print(applied.length ? `applied: ${applied.join(', ')}` : 'omniscrape tables: up to date');
      await connecting(url, async () => {
        await boss.start();
        await ensureQueues(boss, cfg);
      });
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

const keys = program.command('keys').description('manage API keys');
/** A limit flag: a whole number, or `default` (back to the service default; no quota for --monthly-quota). */
function limitValue(value: string): number | null {
  if (value === 'default' || value === 'none') return null;
  return positiveInt(value);
}

function withLimitOptions(command: Command): Command {
  return command
    .option(
      '--concurrency <n>',
      'scrapes processing at once, sync and async together (default: OMNISCRAPE_DEFAULT_CONCURRENCY)',
      limitValue,
    )
    .option(
      '--max-queued <n>',
      'async jobs waiting at once (default: OMNISCRAPE_DEFAULT_MAX_QUEUED)',
      limitValue,
    )
    .option('--monthly-quota <n>', 'successful scrapes per calendar month, UTC (default: none)', limitValue);
}

type LimitOptions = { concurrency?: number | null; maxQueued?: number | null; monthlyQuota?: number | null };

withLimitOptions(keys.command('create <name>'))
  .description('create a key and print it once (only its hash is stored)')
  .action(async (name: string, limits: LimitOptions) => {
    const cfg = config();
    const key = generateApiKey();
    const created = await withStore(cfg, (store) => insertApiKey(store.db, name, key, limits));
    if (!created) fail(`a key named "${name}" already exists`);
    print(key);
    process.stderr.write(`created key "${name}"; it is shown only this once.\n`);
  });
withLimitOptions(keys.command('limits <name>'))
  .description("change a key's limits (a value of `default` restores the service default)")
  .action(async (name: string, limits: LimitOptions) => {
    const updated = await withStore(config(), (store) => updateApiKeyLimits(store.db, name, limits));
    if (!updated) fail(`no key named "${name}"`);
    print(`updated the limits of key "${name}" (they apply to jobs submitted from now on)`);
  });
keys
  .command('revoke <name>')
  .description('revoke a key: requests with it are refused at once')
  .action(async (name: string) => {
    const revoked = await withStore(config(), (store) => revokeApiKey(store.db, name));
    if (!revoked) fail(`no active key named "${name}"`);
    print(`revoked key "${name}"`);
  });
keys
  .command('list')
  .description('list keys (names and prefixes, never the keys)')
  .action(async () => {
    const rows = await withStore(config(), (store) => listApiKeys(store.db));
    const or = (value: number | null, fallback: string) => (value === null ? fallback : String(value));
    for (const row of rows) {
      const limits = `concurrency ${or(row.concurrency_limit, 'default')}, max queued ${or(row.max_queued, 'default')}, monthly quota ${or(row.monthly_quota, 'none')}`;
      const revoked = row.revoked_at ? `\trevoked ${new Date(row.revoked_at).toISOString()}` : '';
      print(`${row.name}\t${row.key_prefix}…\tcreated ${row.created_at.toISOString()}\t${limits}${revoked}`);
    }
  });

program.parseAsync(process.argv).catch(failWith);
