import { setTimeout as sleep } from 'node:timers/promises';

/** Pause between two delete batches, so a large purge never holds locks or I/O for long. */
export const PURGE_BATCH_PAUSE_MS_DEFAULT = 50;

export interface BatchedDeleteOptions {
  batchSize: number;
  pauseMs?: number;
  onBatch?: (deletedSoFar: number) => void;
  /** Ends the purge after the batch in progress; the next run deletes the rest. */
  signal?: AbortSignal;
}

/**
 * Runs `deleteBatch` (which deletes up to its argument's rows and says how many went) until a
 * batch comes back short, pausing between batches; returns how many rows went in all.
 */
export async function deleteInBatches(
  deleteBatch: (batchSize: number) => Promise<number>,
  options: BatchedDeleteOptions,
): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await deleteBatch(options.batchSize);
    total += deleted;
    options.onBatch?.(total);
    if (deleted < options.batchSize || options.signal?.aborted) return total;
    await sleep(options.pauseMs ?? PURGE_BATCH_PAUSE_MS_DEFAULT);
  }
}
