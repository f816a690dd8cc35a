import { directDatabaseUrl, listenHost, type Config } from '../config';
import { connectionBudget } from '../admin/connection-budget';
import { migrateDatabase, pendingDatabaseMigrations, waitForMigrations } from '../admin/database-setup';
import { isDatabaseUnavailable } from '../domain-errors';
import { createLogger, type Logger } from '../logger';
import { startService, type ServiceRoles } from '../service';
import { StartupFailure } from '../startup-failure';
import { assertConnects, openStore } from '../db/pool';
import { config, connecting, fail, print } from './common';
import {
  LOCAL_KEY_NAME,
  localApiKey,
  localApiKeyFile,
  POSTGRES_PASSWORD_FILE,
  startLocalPostgres,
} from './local-mode';
import { localSecretsKey } from './local-secrets-key';
import { assertCanListen } from './startup-errors';
import { boundWorkerHeapGrowth } from './worker-heap';

export interface RunOptions {
  /**
   * `serve`: an embedded Postgres when DATABASE_URL is unset, and the database migrated at start
   * (as the owner role of OMNISCRAPE_MIGRATION_DATABASE_URL when set): the easy path.
   */
  allowEmbedded?: boolean;
  /** `api`, `worker`: with migrations pending, wait for them rather than exit. */
  waitForMigrations?: boolean;
}

/**
 * Runs the roles `serve`, `api` and `worker` start, until SIGTERM or SIGINT stops them in order.
 * Only `serve` starts an embedded Postgres and migrates; `api` and `worker` run no DDL: they check
 * that the database is current and refuse (or wait) when it is not.
 */
export async function runRoles(roles: ServiceRoles, options: RunOptions = {}): Promise<void> {
  const cfg = config();
  const logger = createLogger(cfg);
  if (roles.worker) boundWorkerHeapGrowth(cfg.workerConcurrency);
  let embedded: Awaited<ReturnType<typeof startLocalPostgres>> | undefined;
  let madeLocalKey = false;
  let heldSignal: NodeJS.Signals | undefined;
  const holdSignal = (signal: NodeJS.Signals) => {
    heldSignal ??= signal;
  };
  if (!cfg.databaseUrl && !options.allowEmbedded)
    fail('DATABASE_URL is required for this role (only `serve` starts an embedded Postgres).');
  // Local mode keeps to this machine unless HOST says otherwise; the service listens at cfg.host.
  cfg.host = listenHost(cfg, !cfg.databaseUrl);
  if (roles.api) await assertCanListen(cfg.host, cfg.port);
  if (cfg.metricsPort !== undefined) {
    if (roles.api && cfg.metricsPort === cfg.port && cfg.port !== 0)
      fail('OMNISCRAPE_METRICS_PORT must differ from PORT (unset, /metrics is served on PORT)');
    await assertCanListen(cfg.host, cfg.metricsPort, 'OMNISCRAPE_METRICS_PORT');
  }
  if (!cfg.databaseUrl) {
    logger.info({ dataDir: cfg.dataDir }, 'no DATABASE_URL: starting the embedded Postgres');
    embedded = await startLocalPostgres(cfg, (line) => logger.warn(line));
  }
  const databaseUrl = cfg.databaseUrl ?? embedded!.url;
  const directUrl = directDatabaseUrl(cfg, databaseUrl);
  if (embedded && cfg.directDatabaseUrl)
    logger.warn(
      'OMNISCRAPE_DIRECT_DATABASE_URL is ignored without DATABASE_URL: the embedded Postgres is used',
    );
  // Checked first, so that its failure names OMNISCRAPE_DIRECT_DATABASE_URL rather than DATABASE_URL.
  if (directUrl !== databaseUrl)
    await connecting(directUrl, () => assertConnects(directUrl), 'OMNISCRAPE_DIRECT_DATABASE_URL');
  let service: Awaited<ReturnType<typeof startService>>;
  try {
    if (options.allowEmbedded) await migrateAtStart(cfg, directUrl, logger);
    // serve too, when it migrated as another role: its own role may lack the runtime grants.
    if (!options.allowEmbedded || cfg.migrationDatabaseUrl)
      await assertMigrated(databaseUrl, options.waitForMigrations ?? false, logger);
    if (embedded) cfg.secretsKey ??= localSecretsKey(cfg);
    if (embedded && cfg.apiKeys.length === 0) {
      cfg.apiKeys = [{ name: LOCAL_KEY_NAME, key: localApiKey(cfg) }];
      madeLocalKey = true;
    }
    // A worker claims jobs before startService returns: a signal from then on is held, and the
    // service stopped in order once it is up, instead of the process dying with jobs in hand.
    process.on('SIGTERM', holdSignal).on('SIGINT', holdSignal);
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
  logger.info(
    {
      roles: roleNames,
      host: cfg.host,
      port: service.port,
      metricsPort: service.metricsPort,
      maxConnections: connectionBudget(cfg, roles).total,
    },
    'omniscrape started',
  );
  if (embedded) {
    print('');
    print(`  omniscrape is running (${roleNames}) on an embedded Postgres.`);
    if (service.port) print(`  API:          http://${urlHost(cfg.host)}:${service.port}`);
    // The password stays in its mode-600 file: terminals are logged and shared more than files are.
    print(
      `  DATABASE_URL: ${urlWithoutPassword(embedded.url)}   (password in ${cfg.dataDir}/${POSTGRES_PASSWORD_FILE})`,
    );
    // The key stays in its mode-600 file too: the banner says where, and how to read it.
    if (madeLocalKey) {
      const keyFile = localApiKeyFile(cfg);
      print(
        `  API key:      in ${keyFile}   (name "${LOCAL_KEY_NAME}"): export KEY=$(cat ${shellWord(keyFile)})`,
      );
    }
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
  process.off('SIGTERM', holdSignal).off('SIGINT', holdSignal);
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  if (heldSignal) void shutdown(heldSignal);
}

/**
 * `serve`'s first step: what `omniscrape migrate` does, as the owner role when one is named, else
 * on the direct connection (migrations hold session locks, which a transaction pooler would lose).
 */
async function migrateAtStart(cfg: Config, directUrl: string, logger: Logger): Promise<void> {
  const url = cfg.migrationDatabaseUrl ?? directUrl;
  const setting = cfg.migrationDatabaseUrl
    ? 'OMNISCRAPE_MIGRATION_DATABASE_URL'
    : directUrl === cfg.directDatabaseUrl
      ? 'OMNISCRAPE_DIRECT_DATABASE_URL'
      : undefined;
  const report = await connecting(url, () => migrateDatabase(cfg, url, logger), setting);
  if (report.applied.length > 0 || report.queueSchema !== 'current')
    logger.info({ applied: report.applied, queueSchema: report.queueSchema }, 'database migrated');
}

/**
 * `api` and `worker` start only on a current database: with migrations pending they end with one
 * line naming them, or (waitForMigrations) wait until `omniscrape migrate` has run.
 */
async function assertMigrated(databaseUrl: string, wait: boolean, logger: Logger): Promise<void> {
  const store = openStore(databaseUrl, { max: 1, applicationName: 'omniscrape-migration-check' });
  try {
    await connecting(databaseUrl, async () => {
      if (wait)
        return waitForMigrations(store.db, (pending) =>
          logger.info({ pending }, 'waiting for pending migrations: run omniscrape migrate'),
        );
      const pending = await pendingDatabaseMigrations(store.db);
      if (pending.length > 0)
        throw new StartupFailure(
          `pending migrations: ${pending.join(', ')}; run \`omniscrape migrate\` (as the owner role), or start with --wait-for-migrations to wait for it`,
        );
    });
  } finally {
    await store.close();
  }
}

/** How a URL names the host the API listens at (every interface: this machine's name for itself). */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

/** A path as one shell word, quoted only when it needs to be. */
function shellWord(text: string): string {
  return /^[\w./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

function urlWithoutPassword(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.password = '';
  return url.toString();
}
