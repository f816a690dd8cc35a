import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger';
import type { Db } from '../store/schema';
import { deleteExpiredResultsBatch } from '../store/job-results';
import { PURGE_RESULTS_QUEUE } from '../jobs/queue';
import type { Duty } from './scheduled-duty';

/** Pause between two delete batches, so a large purge never holds locks or I/O for long. */
export const PURGE_BATCH_PAUSE_MS_DEFAULT = 50;

export interface PurgeOptions {
  batchSize: number;
  pauseMs?: number;
  onBatch?: (deletedSoFar: number) => void;
  /** Ends the purge after the batch in progress; the next run deletes the rest. */
  signal?: AbortSignal;
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
    if (deleted < options.batchSize || options.signal?.aborted) return total;
    await sleep(options.pauseMs ?? PURGE_BATCH_PAUSE_MS_DEFAULT);
  }
}

/** The scheduled result purge (`omniscrape cleanup` runs the same purge by hand). */
export function resultPurge(
  deps: { db: Db; logger: Logger },
  options: { cron: string; batchSize: number },
): Duty {
  return {
    name: 'result purge',
    queue: PURGE_RESULTS_QUEUE,
    cron: options.cron,
    async run(stopping) {
      const deleted = await purgeExpiredResults(deps.db, { batchSize: options.batchSize, signal: stopping });
      if (deleted > 0) deps.logger.info({ deleted }, 'purged expired results');
    },
  };
}
