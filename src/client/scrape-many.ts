import type { AsyncScrapeRequest, Job, OmniscrapeClient } from './client';

export interface ScrapeManyProgress {
  total: number;
  /** Jobs ended so far, whatever their status. */
  done: number;
  /** Of those, the ones not completed (failed, timed_out, cancelled). */
  failed: number;
}

export interface ScrapeManyOptions {
  /** Jobs waited on at once: each is one held `?wait=` request (default 10). */
  concurrency?: number;
  /**
   * Requests per POST /v1/scrape/batch (default 100). At most two batches are submitted and not yet
   * ended at a time: the next one queues while the tail of the one before runs, and the key stays
   * far under its queued-jobs limit.
   */
  batchSize?: number;
  /** Per job, how long to wait for it to end (default 5 minutes). */
  timeoutMs?: number;
  onProgress?: (progress: ScrapeManyProgress) => void;
  /**
   * Stops the run: the jobs submitted and not yet ended are cancelled (those still queued; a job a
   * worker already started runs to its end), then the iterator throws a ScrapeManyAbortedError.
   */
  signal?: AbortSignal;
}

/** What an aborted scrapeMany left behind. */
export class ScrapeManyAbortedError extends Error {
  override readonly name = 'ScrapeManyAbortedError';

  constructor(
    /** Jobs that were still queued and are now cancelled. */
    readonly cancelled: number,
    /** Jobs that could not be cancelled (already started or ended): they run to their end unseen. */
    readonly notCancelled: number,
    options?: ErrorOptions,
  ) {
    super(`aborted: ${cancelled} queued jobs cancelled, ${notCancelled} already started`, options);
  }
}

type Settled = { id: string; job: Job } | { id: string; error: unknown };

/** Cancels `ids`, a few at a time; counts those cancelled and those a worker had already taken. */
async function cancelAll(client: OmniscrapeClient, ids: string[]): Promise<[number, number]> {
  let cancelled = 0;
  const queue = [...ids];
  const cancelNext = async (): Promise<void> => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const job = await client.cancel(id).catch(() => undefined);
      if (job?.status === 'cancelled') cancelled++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(10, queue.length) }, cancelNext));
  return [cancelled, ids.length - cancelled];
}

/**
 * Scrapes many URLs as jobs, yielding each job once it has ended (waits are started in the order
 * of submission, and jobs come out in the order they end).
 */
export async function* scrapeMany(
  client: OmniscrapeClient,
  requests: Array<string | AsyncScrapeRequest>,
  options: ScrapeManyOptions = {},
): AsyncGenerator<Job, void, undefined> {
  const { concurrency = 10, batchSize = 100, timeoutMs, onProgress, signal } = options;
  const progress: ScrapeManyProgress = { total: requests.length, done: 0, failed: 0 };
  /** Submitted, not waited on yet. */
  const submitted: string[] = [];
  /** Waited on, not ended yet. */
  const waiting = new Map<string, Promise<Settled>>();
  let next = 0;
  try {
    while (next < requests.length || submitted.length > 0 || waiting.size > 0) {
      signal?.throwIfAborted();
      while (next < requests.length && submitted.length + waiting.size <= batchSize) {
        const chunk = requests
          .slice(next, next + batchSize)
          .map((r) => (typeof r === 'string' ? { url: r } : r));
        // Not aborted midway: a batch the server took must be known here, to be cancelled.
        const { job_ids } = await client.submitBatch(chunk);
        next += chunk.length;
        submitted.push(...job_ids);
        signal?.throwIfAborted();
      }
      while (waiting.size < concurrency && submitted.length > 0) {
        const id = submitted.shift()!;
        const settle = client.waitForJob(id, { timeoutMs, signal }).then(
          (job): Settled => ({ id, job }),
          (error: unknown): Settled => ({ id, error }),
        );
        waiting.set(id, settle);
      }
      const settled = await Promise.race(waiting.values());
      if ('error' in settled) throw settled.error; // still in `waiting`: an abort cancels it
      waiting.delete(settled.id);
      progress.done++;
      if (settled.job.status !== 'completed') progress.failed++;
      onProgress?.({ ...progress });
      yield settled.job;
    }
  } catch (error) {
    if (!signal?.aborted) throw error;
    const [cancelled, notCancelled] = await cancelAll(client, [...waiting.keys(), ...submitted]);
    throw new ScrapeManyAbortedError(cancelled, notCancelled, { cause: error });
  }
}
