import type { Logger } from '../logger';
import { deleteExpiredIdempotencyKeysBatch } from '../db/idempotency-keys';
import type { Db } from '../db/schema';
import { deleteInBatches } from './batched-delete';
import type { Duty } from './scheduled-duty';

/** This duty's pg-boss queue (ensureMaintenanceQueues creates it); its schedule is named after it. */
export const PURGE_IDEMPOTENCY_KEYS_QUEUE = 'purge-expired-idempotency-keys';

/** The scheduled deletion of idempotency keys past their 24 hours, in batches. */
export function idempotencyKeyPurge(
  deps: { db: Db; logger: Logger },
  options: { cron: string; batchSize: number },
): Duty {
  return {
    name: 'idempotency key purge',
    queue: PURGE_IDEMPOTENCY_KEYS_QUEUE,
    cron: options.cron,
    async run(stopping) {
      const deleted = await deleteInBatches(
        (batchSize) => deleteExpiredIdempotencyKeysBatch(deps.db, batchSize),
        { batchSize: options.batchSize, signal: stopping },
      );
      if (deleted > 0) deps.logger.info({ deleted }, 'purged expired idempotency keys');
    },
  };
}
