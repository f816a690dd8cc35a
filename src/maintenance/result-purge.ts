import type { Logger } from '../logger';
import type { ServiceMetrics } from '../metrics/service-metrics';
import type { Db } from '../db/schema';
import { deleteExpiredResultsBatch } from '../db/job-results';
import { deleteInBatches, type BatchedDeleteOptions } from './batched-delete';
import type { Duty } from './scheduled-duty';

/** This duty's pg-boss queue (ensureMaintenanceQueues creates it); its schedule is named after it. */
export const PURGE_RESULTS_QUEUE = 'purge-expired-results';

/**
 * Deletes every expired result, in batches of `batchSize`, until a batch comes back short. The job
 * history rows stay; a purged job answers RESULT_EXPIRED.
 */
export function purgeExpiredResults(db: Db, options: BatchedDeleteOptions): Promise<number> {
  return deleteInBatches((batchSize) => deleteExpiredResultsBatch(db, batchSize), options);
}

/** The scheduled result purge (`omniscrape cleanup` runs the same purge by hand). */
export function resultPurge(
  deps: { db: Db; logger: Logger; metrics: ServiceMetrics },
  options: { cron: string; batchSize: number },
): Duty {
  return {
    name: 'result purge',
    queue: PURGE_RESULTS_QUEUE,
    cron: options.cron,
    async run(stopping) {
      // Counted batch by batch: a run that fails halfway has still deleted what it deleted.
      let counted = 0;
      const deleted = await purgeExpiredResults(deps.db, {
        batchSize: options.batchSize,
        signal: stopping,
        onBatch: (soFar) => {
          deps.metrics.resultsPurged(soFar - counted);
          counted = soFar;
        },
      });
      if (deleted > 0) deps.logger.info({ deleted }, 'purged expired results');
    },
  };
}
