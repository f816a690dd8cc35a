import { PgBoss, type Job, type JobAttempt } from 'pg-boss';
import bossPackage from 'pg-boss/package.json';
import type { Config } from '../config';
import { MAX_TIMEOUT_SECONDS, type ScrapeRequest } from '../scraper/scrape-request';
import { PgBossDbListeningElsewhere } from './queue-listener-db';

/** pg-boss owns these queue tables, in schema `pgboss`. */
export const PGBOSS_SCHEMA = 'pgboss';
/**
 * The schema version this pg-boss release runs on (what its migrations bring a database to); it
 * publishes it in its package.json, which is what its own start-up compares the database against.
 */
export const PGBOSS_SCHEMA_VERSION: number = bossPackage.pgboss.schema;
export const SCRAPE_QUEUE = 'scrape';
/** Where pg-boss moves a scrape whose worker vanished more often than retries allow. */
export const LOST_SCRAPE_QUEUE = 'scrape-lost';
/** Webhook deliveries, one pg-boss job per job end (or redelivery); its retries are the backoff. */
export const WEBHOOK_QUEUE = 'deliver-webhook';
/**
 * Retries of a failing delivery: with pg-boss's backoff (the delay before retry n + 1 is 1–2×
 * retryDelay·2^n at random, capped at retryDelayMax) from 10–20 s up to an hour, 32 retries span
 * about a day (24.4–25.4 h).
 */
export const WEBHOOK_RETRY_LIMIT = 32;
export const WEBHOOK_RETRY_DELAY_MAX_SECONDS = 3600;

/** How often pg-boss's supervisor looks for jobs whose heartbeat stopped (crash detection). */
export const SUPERVISE_INTERVAL_SECONDS = 5;

export interface ScrapeJobData {
  /** The history row's id. Also the pg-boss job's id, except for a dead-lettered copy. */
  jobId: string;
  request: ScrapeRequest;
  /** Its pg-boss priority (its round, see KeyRounds), kept for the copy a busy key's job is put back as. */
  priority?: number;
  /** The job has a webhook: its end enqueues a delivery (see settle-scrape-jobs.ts). */
  webhook?: true;
}

/** The attempt of a job a worker holds: what pg-boss's `complete` is fenced to. */
export const attemptOf = (job: Job<unknown>): JobAttempt => ({ id: job.id, retryCount: job.retryCount });

/** `admin`: `omniscrape migrate` and the migration step of `serve`, the only ones that run DDL. */
export type BossRole = 'api' | 'worker' | 'admin';

/** pg-boss's pool of the admin instance: it creates the schema and the queues one statement at a time. */
const ADMIN_BOSS_POOL_SIZE = 2;

/**
 * pg-boss's pool size in a process of this role: OMNISCRAPE_PGBOSS_POOL_SIZE, else 10 in an API, and
 * in a worker 4 + a quarter of its concurrency, at most 20 (its failures and heartbeats go through
 * this pool, next to the supervisor, the cron and the maintenance queues' polls).
 */
export function bossPoolSize(config: Config, role: BossRole): number {
  if (role === 'admin') return ADMIN_BOSS_POOL_SIZE;
  if (config.bossPoolSize !== undefined) return config.bossPoolSize;
  return role === 'worker' ? Math.min(4 + Math.ceil(config.workerConcurrency / 4), 20) : 10;
}

/**
 * One pg-boss instance per process. Only a worker's supervises (heartbeat and expiry checks), runs
 * the cron schedules and LISTENs for queue notices; an API's (and the CLI's) inserts jobs and
 * fetches nothing. The service's own LISTENs (queued-job notices in a worker; key changes and
 * job-status notices in an API) are connections of their own (listenForNotifications,
 * listenOnChannels), not pg-boss's. Only the admin instance creates or migrates pg-boss's schema
 * (and runs the index builds a migration leaves to it): an API's or a worker's finds it current or
 * refuses to start, so they run no DDL.
 */
export function createBoss(
  config: Config,
  databaseUrl: string,
  role: BossRole,
  /** Where its LISTEN connection goes (the direct connection, when DATABASE_URL is a pooler's). */
  listenUrl = databaseUrl,
): PgBoss {
  const working = role === 'worker';
  const connection = {
    connectionString: databaseUrl,
    application_name: `omniscrape-${role}`,
    max: bossPoolSize(config, role),
    connectionTimeoutMillis: 5_000,
  };
  return new PgBoss({
    ...(listenUrl === databaseUrl
      ? connection
      : {
          db: new PgBossDbListeningElsewhere(connection, listenUrl),
          application_name: connection.application_name,
        }),
    schema: PGBOSS_SCHEMA,
    migrate: role === 'admin',
    supervise: working,
    schedule: working,
    useListenNotify: working,
    superviseIntervalSeconds: SUPERVISE_INTERVAL_SECONDS,
    // Heartbeat expiry runs in the monitor pass, which is gated by this interval (default 60 s).
    monitorIntervalSeconds: SUPERVISE_INTERVAL_SECONDS,
    registerInstance: working,
    instanceName: `omniscrape-${role}`,
  });
}

/**
 * Creates (or updates) the queues with the settings the job lifecycle relies on. Idempotent. The
 * maintenance duties' queues are maintenance's own (ensureMaintenanceQueues).
 */
export async function ensureQueues(boss: PgBoss, config: Config): Promise<void> {
  await boss.createQueue(LOST_SCRAPE_QUEUE, {
    retryLimit: 5,
    retryDelay: 5,
    deleteAfterSeconds: 24 * 3600,
    notify: true,
  });
  const scrapeQueue = {
    heartbeatSeconds: config.heartbeatSeconds,
    // A hard bound above any single attempt; the heartbeat is what detects crashes quickly.
    expireInSeconds: MAX_TIMEOUT_SECONDS + 60,
    // A backstop: the worker ends a job after MAX_ATTEMPTS lost attempts itself, and hand-backs
    // from stopping workers (which pg-boss also counts as retries) must not exhaust it.
    retryLimit: 10,
    retryDelay: 1,
    deleteAfterSeconds: 3600,
    deadLetter: LOST_SCRAPE_QUEUE,
    // No pg-boss NOTIFY on send: it would run inside the submit transaction and serialise commits.
    // Submissions wake workers with one coalesced notice after commit instead (WorkerWake).
    notify: false,
  };
  if (await boss.getQueue(SCRAPE_QUEUE)) {
    await boss.updateQueue(SCRAPE_QUEUE, scrapeQueue);
  } else {
    await boss.createQueue(SCRAPE_QUEUE, scrapeQueue);
  }
  const webhookQueue = {
    retryLimit: WEBHOOK_RETRY_LIMIT,
    retryDelay: config.webhookRetryDelaySeconds,
    retryBackoff: config.webhookRetryBackoff,
    ...(config.webhookRetryBackoff && { retryDelayMax: WEBHOOK_RETRY_DELAY_MAX_SECONDS }),
    // A delivery sends for 10 s at most; a worker lost mid-delivery has its job retried.
    expireInSeconds: 60,
    deleteAfterSeconds: 24 * 3600,
    notify: true,
  };
  if (await boss.getQueue(WEBHOOK_QUEUE)) await boss.updateQueue(WEBHOOK_QUEUE, webhookQueue);
  else await boss.createQueue(WEBHOOK_QUEUE, webhookQueue);
}
