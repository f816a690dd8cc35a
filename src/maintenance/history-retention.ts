import type { Logger } from '../logger';
import { daysToRollUp, rollUpDay } from '../db/daily-usage-rollup';
import { deleteHistoryBatch, markHistoryDeleted, slicesPastRetention } from '../db/history-retention-queries';
import type { Db } from '../db/schema';
import { deleteInBatches, type BatchedDeleteOptions } from './batched-delete';
import type { Duty } from './scheduled-duty';

/** This duty's pg-boss queue (ensureMaintenanceQueues creates it); its schedule is named after it. */
export const HISTORY_RETENTION_QUEUE = 'roll-up-and-delete-old-history';

/**
 * Rolls up every day due (see daysToRollUp), one statement per day, oldest first; returns how many
 * days it rolled up. A stop ends it between two days; the next run goes on from there.
 */
export async function rollUpDailyUsage(db: Db, signal?: AbortSignal): Promise<number> {
  const days = await daysToRollUp(db);
  let rolled = 0;
  for (const day of days) {
    if (signal?.aborted) break;
    await rollUpDay(db, day);
    rolled++;
  }
  return rolled;
}

/**
 * Deletes the history past the retention, a (day, key) slice at a time, each in batches of
 * `batchSize` jobs (a short transaction each, with a pause between), and marks each slice deleted
 * once it is empty. Only slices whose roll-up is final are touched (slicesPastRetention): their
 * daily usage is the same after the deletion as before. Returns how many jobs went.
 */
export async function deleteExpiredHistory(
  db: Db,
  options: BatchedDeleteOptions & { historyDays: number },
): Promise<number> {
  let deleted = 0;
  for (const slice of await slicesPastRetention(db, options.historyDays)) {
    if (options.signal?.aborted) break;
    deleted += await deleteInBatches((batchSize) => deleteHistoryBatch(db, slice, batchSize), {
      ...options,
      onBatch: (n) => options.onBatch?.(deleted + n),
    });
    if (!options.signal?.aborted) await markHistoryDeleted(db, slice);
  }
  return deleted;
}

/**
 * The scheduled history retention: first the daily usage roll-up, then the deletion of history
 * rows older than `historyDays` whose days are rolled up. Results keep their own, shorter, purge.
 */
export function historyRetention(
  deps: { db: Db; logger: Logger },
  options: { cron: string; batchSize: number; historyDays: number },
): Duty {
  return {
    name: 'history retention',
    queue: HISTORY_RETENTION_QUEUE,
    cron: options.cron,
    async run(stopping) {
      const rolledUp = await rollUpDailyUsage(deps.db, stopping);
      const deleted = await deleteExpiredHistory(deps.db, {
        batchSize: options.batchSize,
        historyDays: options.historyDays,
        signal: stopping,
      });
      if (rolledUp > 0 || deleted > 0)
        deps.logger.info(
          { rolledUpDays: rolledUp, deletedJobs: deleted },
          'rolled up and deleted old history',
        );
    },
  };
}
