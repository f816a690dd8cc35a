import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { directDatabaseUrl, listenHost, type Config } from './config';
import { InFlightWork, type ServiceContext } from './context';
import { createApp } from './http/app';
import { createMetricsApp } from './http/metrics-route';
import { listen, type HttpServer } from './http/server';
import { ApiKeyCache } from './jobs/api-key-cache';
import { BatchProgressReaders } from './jobs/batch-progress';
import { endRevokedKeysRequests, HeldRequests } from './jobs/held-requests';
import { JobWatchers } from './jobs/job-watchers';
import { KeyRounds, QueueCapCheck } from './jobs/key-limits';
import { createBoss, ensureQueues, PGBOSS_SCHEMA, SCRAPE_QUEUE } from './jobs/queue';
import { startScrapeWorker, type ScrapeWorker } from './jobs/scrape-worker';
import { startWebhookDeliveries } from './jobs/webhook-delivery';
import { SubmitBatcher } from './jobs/submit-batcher';
import { StatusNotices } from './jobs/status-notices';
import { SyncScrapeLeases } from './jobs/sync-leases';
import { WorkerWake } from './jobs/worker-wake';
import { createLogger, type Logger } from './logger';
import { ServiceMetrics } from './metrics/service-metrics';
import { ensureMaintenanceQueues, startMaintenance, type Maintenance } from './maintenance/maintenance';
import type { GuardRefusal } from './scraper/address-guard';
import { BrowserEngine } from './scraper/browser-engine';
import { PageScraper } from './scraper/page-scraper';
import { Scraper } from './scraper/scraper';
import { KEYS_CHANGED_CHANNEL, unrevokedKeyIds, upsertApiKey } from './db/api-keys';
import { StartupFailure } from './startup-failure';
import type { DatabaseUrls } from './admin/migrate';
import { openReportingStore, openStore, poolCounts } from './db/pool';
import { countQueueDepth } from './db/queue-depth';
import { queueHeadRound } from './db/key-limits-queries';
import { listenOnChannels } from './db/notification-listener';
import { JOB_STATUS_CHANNEL } from './db/statements/announce-status-changes';

/** The application_name of each API process's one listening connection (tests find its backend by it). */
export const API_LISTENER = 'omniscrape-api-listener';
/** The longest the queue-depth count of a metrics scrape may run. */
const QUEUE_DEPTH_TIMEOUT_MS = 2_000;
/** A stopping metrics port's wait for a scrape in progress. */
const METRICS_GRACE_MS = 1_000;

export interface ServiceRoles {
  /** Serve the HTTP API. */
  api: boolean;
  /** Process scrape jobs and run the scheduled maintenance. */
  worker: boolean;
}

export interface RunningService {
  /** The port the API listens on (when it runs). */
  port: number | undefined;
  /** The port GET /metrics has to itself (OMNISCRAPE_METRICS_PORT), when set. */
  metricsPort: number | undefined;
  context: ServiceContext;
  stop(): Promise<void>;
}

/** A started part of the service; shutdown stops the parts in a fixed order. */
interface Part {
  stop(): Promise<void>;
}

type ApiRole = Part & { port: number | undefined };

/**
 * Starts the roles this process runs against one Postgres. Any number of API and worker processes
 * can run side by side, on any machines: all they share is the database. The database must be
 * migrated already (migrateDatabase): a service runs no DDL, so its role needs no more than the
 * runtime grants (admin/runtime-role.ts). `databaseUrl` may be a transaction-mode pooler's
 * (PgBouncer): the LISTEN connections, which need a session of their own, go to
 * config.directDatabaseUrl.
 */
export async function startService(
  config: Config,
  databaseUrl: string,
  roles: ServiceRoles,
  logger: Logger = createLogger(config),
): Promise<RunningService> {
  // Names this process in its job notices (its own worker is woken directly instead).
  const processId = randomUUID();
  const urls = { pooled: databaseUrl, direct: directDatabaseUrl(config, databaseUrl) };
  let worker: ScrapeWorker | undefined;
  const context = createContext(config, urls, roles, logger, processId, () => worker?.wake());
  const { store, reporting, boss, scraper } = context;
  let maintenance: Part | undefined;
  let webhooks: Part | undefined;
  let api: ApiRole | undefined;
  let metricsServer: HttpServer | undefined;
  try {
    // First: a taken port then stops the start before anything else has started.
    metricsServer = await listenForMetrics(context);
    await prepareDatabase(context);
    if (roles.worker) {
      worker = await startScrapeWorker(context, urls.direct, processId);
      maintenance = await startWorkerMaintenance(context);
      webhooks = await startWebhookDeliveries(context);
    }
    if (roles.api) api = await startApi(context, urls.direct);
  } catch (err) {
    const cleanup = await Promise.allSettled([
      metricsServer?.stop(),
      boss.stop({ graceful: false }),
      scraper.close(),
      store.close(),
      reporting.destroy(),
    ]);
    // The start-up error is rethrown (the caller reports it); failures while undoing it only logged.
    logRejected(logger, cleanup);
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // Stop claiming at once; in-flight jobs get the grace period while the API drains. Then,
      // in order: the API's leases and listener, maintenance, webhook deliveries, the worker, the
      // metrics port (answering until then), pg-boss, scraper, store, reporting reads.
      const workerStopped = worker
        ?.stop()
        .catch((err) => logger.error({ err }, 'stopping the workers failed'));
      await api?.stop();
      await maintenance?.stop();
      await webhooks?.stop();
      await workerStopped;
      await metricsServer?.stop();
      await boss.stop({ graceful: true, timeout: config.shutdownGraceSeconds * 1000 });
      await scraper.close();
      await store.close();
      await reporting.destroy();
    })());

  return { port: api?.port, metricsPort: metricsServer?.port, context, stop };
}

/** The HTTP engine, and the browser engine unless OMNISCRAPE_BROWSER_CONCURRENCY is 0 (Chromium starts on the first render). */
function pageScraper(config: Config, logger: Logger, metrics: ServiceMetrics): PageScraper {
  const targets = { allowPrivateTargets: config.allowPrivateTargets, blockedTargets: config.blockedTargets };
  // Clients are told only that such a name did not resolve; the operator learns why.
  const onRefused = (refusal: GuardRefusal) =>
    logger.info(refusal, 'scrape target refused: its name resolves only to blocked addresses');
  const http = new Scraper({ ...targets, maxBodyBytes: config.maxTargetBodyBytes, onRefused });
  if (config.browserConcurrency === 0) return new PageScraper(http, 'OMNISCRAPE_BROWSER_CONCURRENCY is 0');
  if (!fs.existsSync(config.chromiumPath)) {
    const why = `Chromium is not installed at ${config.chromiumPath} (sh scripts/chromium.sh installs Debian's; OMNISCRAPE_CHROMIUM_PATH names another)`;
    logger.warn(`rendering is off: ${why}`);
    return new PageScraper(http, why);
  }
  const browser = new BrowserEngine({
    ...targets,
    chromiumPath: config.chromiumPath,
    sandbox: config.browserSandbox,
    concurrency: config.browserConcurrency,
    maxBodyBytes: config.maxTargetBodyBytes,
    onRefused,
    observer: metrics.browserObserver(),
    logger,
  });
  return new PageScraper(http, browser);
}

/** The store, the queue client, the scraper, and what the roles share, unstarted. */
function createContext(
  config: Config,
  urls: DatabaseUrls,
  roles: ServiceRoles,
  logger: Logger,
  processId: string,
  wakeOwnWorker: () => void,
): ServiceContext {
  const store = openStore(urls.pooled, {
    max: roles.api ? config.apiPoolSize : config.workerPoolSize,
    onError: (err) => logger.warn({ err }, 'idle Postgres connection lost'),
    applicationName: `omniscrape-${roles.api ? 'api' : 'worker'}`,
    prepareStatements: config.preparedStatements,
  });
  // Its pool connects on first use: a process that reads no report opens no connection for it.
  const reporting = openReportingStore(config.reportingDatabaseUrl ?? urls.pooled, {
    max: config.reportingPoolSize,
    onError: (err) => logger.warn({ err }, 'idle reporting connection lost'),
    applicationName: 'omniscrape-reporting',
  });
  const boss = createBoss(config, urls.pooled, roles.worker ? 'worker' : 'api', urls.direct);
  // pg-boss reports background failures (Postgres down) as events; they must never crash the process.
  boss.on('error', (err) => logger.warn({ err }, 'pg-boss background error'));
  // Conditions an operator acts on, e.g. a bloated queue index a runtime role may not rebuild
  // (`omniscrape migrate` does, as the owner).
  boss.on('warning', ({ message, data }) => logger.warn({ data }, `pg-boss: ${message}`));
  const workerWake = new WorkerWake(store.db, logger, processId);
  const jobWatchers = new JobWatchers(store.db, logger);
  const metrics = new ServiceMetrics(
    {
      pools: {
        store: () => poolCounts(store.pool),
        reporting: () => poolCounts(reporting.pool),
        pgboss: () => boss.getDb().poolCounts?.() ?? null,
      },
      queueDepth: () => countQueueDepth(store.db, QUEUE_DEPTH_TIMEOUT_MS),
    },
    logger,
  );
  return {
    config,
    logger,
    store,
    reporting: reporting.db,
    boss,
    scraper: pageScraper(config, logger, metrics),
    queueCaps: new QueueCapCheck(),
    rounds: new KeyRounds(() => queueHeadRound(store.db, PGBOSS_SCHEMA, SCRAPE_QUEUE)),
    // Other processes' workers hear of new jobs by NOTIFY; this process's own, if any, directly.
    submissions: new SubmitBatcher(
      store.db,
      boss,
      () => {
        wakeOwnWorker();
        workerWake.announce();
      },
      config.secretsKey,
    ),
    inFlight: new InFlightWork(),
    syncLeases: new SyncScrapeLeases(store.db, logger, config.syncLeaseSeconds),
    apiKeys: new ApiKeyCache(store.db),
    statusNotices: new StatusNotices(store.db, logger),
    jobWatchers,
    heldRequests: new HeldRequests({ perKey: config.maxStreamsPerKey, perProcess: config.maxStreams }),
    batchProgress: new BatchProgressReaders(store.db, jobWatchers, logger),
    metrics,
  };
}

/**
 * The configured API keys, pg-boss and its queues: what every role needs first. Rows only, no DDL:
 * the schema is the migrations' (admin/database-setup.ts), applied before any role starts.
 */
async function prepareDatabase({ store, boss, config, logger }: ServiceContext): Promise<void> {
  for (const { name, key } of config.apiKeys) {
    const outcome = await upsertApiKey(store.db, name, key);
    if (outcome === 'revoked')
      logger.warn({ name }, 'OMNISCRAPE_API_KEYS names a revoked key; it stays revoked');
    if (outcome === 'replaced')
      logger.warn({ name }, 'OMNISCRAPE_API_KEYS gives this key a new value; its old value no longer works');
    if (outcome === 'admin-kept') throw adminKeyNotReplaced(name);
  }
  if (!config.secretsKey)
    logger.warn(
      "OMNISCRAPE_SECRETS_KEY is not set: webhooks signed with their key's secret are not sent (each attempt fails, and is retried), and webhook secrets of submissions are stored unencrypted (docs/security.md)",
    );
  await boss.start();
  await ensureQueues(boss, config);
  await ensureMaintenanceQueues(boss);
}

const adminKeyNotReplaced = (name: string) =>
  new StartupFailure(
    `OMNISCRAPE_API_KEYS gives "${name}" another value, but "${name}" is an admin key, which settings never replace: ` +
      `remove it from OMNISCRAPE_API_KEYS, or revoke it (omniscrape keys revoke ${name}) and provision the new value under another name`,
  );

/** The scheduled duties a worker process takes its share of (see maintenance/). */
function startWorkerMaintenance({
  boss,
  store,
  logger,
  config,
  metrics,
}: ServiceContext): Promise<Maintenance> {
  return startMaintenance(
    { boss, db: store.db, logger, metrics },
    {
      cron: config.purgeCron,
      purgeBatchSize: config.purgeBatchSize,
      syncLeaseSeconds: config.syncLeaseSeconds,
      historyDays: config.historyDays,
      stopTimeoutMs: config.shutdownGraceSeconds * 1000,
      pollSeconds: config.maintenancePollSeconds,
    },
  );
}

/**
 * The API role: the HTTP server, the leases of the sync scrapes it runs, and one listening
 * connection, which empties the key cache and ends revoked keys' streams and waits when keys
 * change, and wakes every waiting request and event stream of the process. Its stop answers the waits and ends the streams, then drains the
 * server for the grace period.
 */
async function startApi(ctx: ServiceContext, directUrl: string): Promise<ApiRole> {
  const { config, logger, syncLeases } = ctx;
  syncLeases.start();
  const listener = listenOnChannels(
    directUrl,
    {
      [KEYS_CHANGED_CHANNEL]: () => {
        ctx.apiKeys.clear();
        endRevokedKeysRequests(ctx.heldRequests, (ids) => unrevokedKeyIds(ctx.store.db, ids)).catch(
          (err: unknown) => logger.warn({ err }, "could not end revoked keys' streams and waits"),
        );
      },
      [JOB_STATUS_CHANNEL]: (payload) => void ctx.jobWatchers.notice(payload),
    },
    logger,
    { applicationName: API_LISTENER, observer: ctx.metrics.listenerObserver('api') },
  );
  try {
    const server = await listen(
      createApp(ctx),
      { host: listenHost(config), port: config.port },
      { graceMs: config.shutdownGraceSeconds * 1000, inFlight: ctx.inFlight },
    );
    return {
      port: server.port,
      async stop() {
        ctx.jobWatchers.stop();
        await server.stop();
        await syncLeases.stop();
        await listener.stop();
      },
    };
  } catch (err) {
    logRejected(logger, await Promise.allSettled([listener.stop(), syncLeases.stop()]));
    throw err;
  }
}

/** GET /metrics on a port of its own (OMNISCRAPE_METRICS_PORT, at HOST), when that is set. */
async function listenForMetrics(ctx: ServiceContext): Promise<HttpServer | undefined> {
  const { config } = ctx;
  if (config.metricsPort === undefined) return undefined;
  return listen(
    createMetricsApp(ctx),
    { host: listenHost(config), port: config.metricsPort },
    { graceMs: METRICS_GRACE_MS, inFlight: new InFlightWork() },
  );
}

function logRejected(logger: Logger, cleanup: PromiseSettledResult<unknown>[]): void {
  for (const r of cleanup)
    if (r.status === 'rejected') logger.warn({ err: r.reason }, 'cleaning up after a failed start failed');
}
