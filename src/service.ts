import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config';
import { InFlightWork, type ServiceContext } from './context';
import { createApp } from './http/app';
import { KeyRounds, QueueCapCheck } from './jobs/key-limits';
import { SubmitBatcher } from './jobs/submit-batcher';
import { SyncScrapeLeases } from './jobs/sync-leases';
import { WorkerWake } from './jobs/worker-wake';
import { createBoss, ensureQueues, PGBOSS_SCHEMA, SCRAPE_QUEUE } from './jobs/queue';
import { startScrapeWorker, type ScrapeWorker } from './jobs/scrape-worker';
import { createLogger, type Logger } from './logger';
import { startMaintenanceSchedule, type MaintenanceSchedule } from './maintenance/result-purge';
import { Scraper } from './scraper/scraper';
import { KEYS_CHANGED_CHANNEL, upsertApiKey } from './store/api-keys';
import { listenForNotifications, type NotificationListener } from './store/notification-listener';
import { ApiKeyCache } from './http/auth';
import { migrateToLatest, openStore } from './store/database';
import { queueHeadRound } from './store/key-limits';

export interface ServiceRoles {
  /** Serve the HTTP API. */
  api: boolean;
  /** Process scrape jobs and run the scheduled maintenance. */
  worker: boolean;
}

export interface RunningService {
  /** The port the API listens on (when it runs). */
  port: number | undefined;
  context: ServiceContext;
  stop(): Promise<void>;
}

/**
 * Starts the roles this process runs against one Postgres. Any number of API and worker processes
 * can run side by side, on any machines: all they share is the database.
 */
export async function startService(
  config: Config,
  databaseUrl: string,
  roles: ServiceRoles,
  logger: Logger = createLogger(config),
): Promise<RunningService> {
  const store = openStore(databaseUrl, {
    max: roles.api ? config.storePoolMax.api : config.storePoolMax.worker,
    onError: (err) => logger.warn({ err }, 'idle Postgres connection lost'),
    applicationName: `omniscrape-${roles.api ? 'api' : 'worker'}`,
    prepareStatements: true,
  });
  const boss = createBoss(config, databaseUrl, roles.worker ? 'worker' : 'api');
  // pg-boss reports background failures (Postgres down) as events; they must never crash the process.
  boss.on('error', (err) => logger.warn({ err }, 'pg-boss background error'));
  const scraper = new Scraper({
    allowPrivateTargets: config.allowPrivateTargets,
    maxBodyBytes: config.maxTargetBodyBytes,
  });
  // Names this process in its job notices (its own worker is woken directly instead).
  const processId = randomUUID();
  const workerWake = new WorkerWake(store.db, logger, processId);
  let worker: ScrapeWorker | undefined;
  const context: ServiceContext = {
    config,
    logger,
    store,
    boss,
    scraper,
    queueCaps: new QueueCapCheck(),
    rounds: new KeyRounds(() => queueHeadRound(store.db, PGBOSS_SCHEMA, SCRAPE_QUEUE)),
    // Other processes' workers hear of new jobs by NOTIFY; this process's own, if any, directly.
    submissions: new SubmitBatcher(store.db, boss, () => {
      worker?.wake();
      workerWake.announce();
    }),
    inFlight: new InFlightWork(),
    syncLeases: new SyncScrapeLeases(store.db, logger, config.syncLeaseSeconds),
    apiKeys: new ApiKeyCache(store.db),
  };

  let server: Server | undefined;
  let maintenance: MaintenanceSchedule | undefined;
  let keyChanges: NotificationListener | undefined;
  try {
    const applied = await migrateToLatest(store.db);
    if (applied.length > 0) logger.info({ applied }, 'database migrated');
    for (const { name, key } of config.apiKeys) {
      if (!(await upsertApiKey(store.db, name, key)))
        logger.warn({ name }, 'OMNISCRAPE_API_KEYS names a revoked key; it stays revoked');
    }
    await boss.start();
    await ensureQueues(boss, config);
    if (roles.worker) {
      worker = await startScrapeWorker(context, databaseUrl, processId);
      maintenance = await startMaintenanceSchedule(
        { boss, db: store.db, logger },
        {
          cron: config.purgeCron,
          batchSize: config.purgeBatchSize,
          syncLeaseSeconds: config.syncLeaseSeconds,
          pollSeconds: config.maintenancePollSeconds,
        },
      );
    }
    if (roles.api) {
      context.syncLeases.start();
      keyChanges = listenForNotifications(
        databaseUrl,
        KEYS_CHANGED_CHANNEL,
        () => context.apiKeys.clear(),
        logger,
      );
      const app = createApp(context);
      server = await new Promise<Server>((resolve, reject) => {
        // Express 5 hands a listen error (port taken) to this callback rather than throwing it.
        const s = app.listen(config.port, config.host, (err?: Error) => (err ? reject(err) : resolve(s)));
      });
    }
  } catch (err) {
    const cleanup = await Promise.allSettled([
      keyChanges?.stop(),
      context.syncLeases.stop(),
      boss.stop({ graceful: false }),
      scraper.close(),
      store.close(),
    ]);
    // The start-up error is rethrown (the caller reports it); failures while undoing it only logged.
    for (const r of cleanup)
      if (r.status === 'rejected') logger.warn({ err: r.reason }, 'cleaning up after a failed start failed');
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // Stop claiming at once; in-flight jobs get the grace period while the API drains.
      const workerStopped = worker
        ?.stop()
        .catch((err) => logger.error({ err }, 'stopping the workers failed'));
      if (server) {
        // Stop accepting; requests in progress (sync scrapes) get the grace period, then are cut.
        const closed = new Promise<void>((resolve) => server!.close(() => resolve()));
        server.closeIdleConnections();
        const cut = setTimeout(() => server!.closeAllConnections(), config.shutdownGraceSeconds * 1000);
        await closed;
        // Sockets can close before their handlers finish (a client that hung up): wait for those too.
        await context.inFlight.drain();
        clearTimeout(cut);
      }
      await context.syncLeases.stop();
      await keyChanges?.stop();
      await maintenance?.stop();
      await workerStopped;
      await boss.stop({ graceful: true, timeout: config.shutdownGraceSeconds * 1000 });
      await scraper.close();
      await store.close();
    })());

  const address = server?.address() as AddressInfo | null | undefined;
  return { port: address?.port, context, stop };
}
