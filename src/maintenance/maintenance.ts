import type { PgBoss } from 'pg-boss';
import type { Logger } from '../logger';
import type { ServiceMetrics } from '../metrics/service-metrics';
import type { Db } from '../db/schema';
import { ABANDONED_SYNC_SCRAPES_QUEUE, abandonedSyncScrapes } from './abandoned-sync-scrapes';
import { HISTORY_RETENTION_QUEUE, historyRetention } from './history-retention';
import { idempotencyKeyPurge, PURGE_IDEMPOTENCY_KEYS_QUEUE } from './idempotency-key-purge';
import { PURGE_RESULTS_QUEUE, resultPurge } from './result-purge';
import { scheduleDuty, type ScheduledDuty } from './scheduled-duty';

export interface MaintenanceOptions {
  /** When the duties run (pg-boss cron, UTC). */
  cron: string;
  purgeBatchSize: number;
  syncLeaseSeconds: number;
  /** How many days history rows are kept (OMNISCRAPE_HISTORY_DAYS). */
  historyDays: number;
  /** How long a stop waits for a duty in progress. */
  stopTimeoutMs: number;
  /** How often a worker looks for a due run of each duty. */
  pollSeconds: number;
}

/** The duties' queues, one each, so one duty's failure never skips another's run. */
export const MAINTENANCE_QUEUES = [
  PURGE_RESULTS_QUEUE,
  ABANDONED_SYNC_SCRAPES_QUEUE,
  PURGE_IDEMPOTENCY_KEYS_QUEUE,
  HISTORY_RETENTION_QUEUE,
] as const;

/** Creates the duties' queues. Idempotent. */
export async function ensureMaintenanceQueues(boss: PgBoss): Promise<void> {
  for (const queue of MAINTENANCE_QUEUES)
    await boss.createQueue(queue, { retryLimit: 1, deleteAfterSeconds: 3600 });
}

export interface Maintenance {
  stop(): Promise<void>;
}

/** Schedules every maintenance duty, each on its own pg-boss queue and schedule. */
export async function startMaintenance(
  deps: { boss: PgBoss; db: Db; logger: Logger; metrics: ServiceMetrics },
  options: MaintenanceOptions,
): Promise<Maintenance> {
  const duties = [
    resultPurge(deps, { cron: options.cron, batchSize: options.purgeBatchSize }),
    abandonedSyncScrapes(deps, { cron: options.cron, syncLeaseSeconds: options.syncLeaseSeconds }),
    idempotencyKeyPurge(deps, { cron: options.cron, batchSize: options.purgeBatchSize }),
    historyRetention(deps, {
      cron: options.cron,
      batchSize: options.purgeBatchSize,
      historyDays: options.historyDays,
    }),
  ];
  const scheduled: ScheduledDuty[] = [];
  for (const duty of duties) scheduled.push(await scheduleDuty(deps, duty, options));
  return {
    async stop() {
      await Promise.all(scheduled.map((duty) => duty.stop()));
    },
  };
}
