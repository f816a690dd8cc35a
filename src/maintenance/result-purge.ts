import { setTimeout as sleep } from 'node:timers/promises';
import type { PgBoss } from 'pg-boss';
import type { Logger } from '../logger';
import type { Db } from '../store/database';
import { deleteExpiredResultsBatch } from '../store/job-results';
import { PURGE_RESULTS_QUEUE } from '../jobs/queue';
import { failAbandonedSyncScrapes } from './abandoned-sync-scrapes';

/** Pause between two delete batches, so a large purge never holds locks or I/O for long. */
export const PURGE_BATCH_PAUSE_MS_DEFAULT = 50;

export interface PurgeOptions {
  batchSize: number;
  pauseMs?: number;
  onBatch?: (deletedSoFar: number) => void;
}

/**
 * Deletes every expired result, in batches of `batchSize`, until a batch comes back short. The job
 * history rows stay; a purged job answers RESULT_EXPIRED.
 */
export async function purgeExpiredResults(db: Db, options: PurgeOptions): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await deleteExpiredResultsBatch(db, options.batchSize);
    total += deleted;
    options.onBatch?.(total);
    if (deleted < options.batchSize) return total;
    await sleep(options.pauseMs ?? PURGE_BATCH_PAUSE_MS_DEFAULT);
  }
}

export interface MaintenanceSchedule {
  stop(): Promise<void>;
}

/**
 * Schedules the maintenance duties through pg-boss cron (no external cron): pg-boss creates one
 * job per slot however many workers run, and one of them purges expired results and ends
 * abandoned sync scrapes. Each duty runs whatever became of the other; a failed one is logged and
 * tried again at the next slot.
 */
export async function startMaintenanceSchedule(
  deps: { boss: PgBoss; db: Db; logger: Logger },
  options: { cron: string; batchSize: number; syncLeaseSeconds: number; pollSeconds: number },
): Promise<MaintenanceSchedule> {
  const { boss, db, logger } = deps;
  await boss.schedule(PURGE_RESULTS_QUEUE, options.cron, null, { tz: 'UTC' });
  await boss.work(PURGE_RESULTS_QUEUE, { pollingIntervalSeconds: options.pollSeconds }, async () => {
    const duties = await Promise.allSettled([
      purgeExpiredResults(db, { batchSize: options.batchSize }).then((deleted) => {
        if (deleted > 0) logger.info({ deleted }, 'purged expired results');
      }),
      failAbandonedSyncScrapes(db, options.syncLeaseSeconds).then((abandoned) => {
        if (abandoned > 0) logger.warn({ abandoned }, 'ended abandoned sync scrapes');
      }),
    ]);
    const failed = duties.flatMap((d) => (d.status === 'rejected' ? [d.reason] : []));
    // Rethrown after both ran, so pg-boss records the slot as failed; each failure logged here with its stack.
    for (const err of failed)
      logger.error({ err }, 'a maintenance duty failed; it runs again at the next slot');
    if (failed.length > 0) throw failed[0];
  });
  return {
    async stop() {
      await boss.offWork(PURGE_RESULTS_QUEUE, { wait: true });
    },
  };
}
