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
  /** Requests per POST /v1/scrape/batch (default 100); the next batch is sent once one has ended. */
  batchSize?: number;
  /** Per job, how long to wait for it to end (default 5 minutes). */
  timeoutMs?: number;
  onProgress?: (progress: ScrapeManyProgress) => void;
}

type Settled = { id: string; job: Job } | { id: string; error: unknown };

/** Waits for `ids` with at most `concurrency` waits open, yielding each job as it ends. */
async function* inOrderOfEnd(ids: string[], concurrency: number, wait: (id: string) => Promise<Job>) {
  const running = new Map<string, Promise<Settled>>();
  let next = 0;
  while (next < ids.length || running.size > 0) {
    while (running.size < concurrency && next < ids.length) {
      const id = ids[next++]!;
      running.set(
        id,
        wait(id).then(
          (job) => ({ id, job }),
          (error: unknown) => ({ id, error }),
        ),
      );
    }
    const settled = await Promise.race(running.values());
    running.delete(settled.id);
    if ('error' in settled) throw settled.error;
    yield settled.job;
  }
}

/**
 * Scrapes many URLs as jobs, batch by batch, yielding each job once it has ended (in the order
 * they end). Sending one batch at a time keeps the key under its queued-jobs limit.
 */
export async function* scrapeMany(
  client: OmniscrapeClient,
  requests: Array<string | AsyncScrapeRequest>,
  options: ScrapeManyOptions = {},
): AsyncGenerator<Job, void, undefined> {
  const { concurrency = 10, batchSize = 100, timeoutMs, onProgress } = options;
  const progress: ScrapeManyProgress = { total: requests.length, done: 0, failed: 0 };
  for (let start = 0; start < requests.length; start += batchSize) {
    const chunk = requests
      .slice(start, start + batchSize)
      .map((r) => (typeof r === 'string' ? { url: r } : r));
    const { job_ids } = await client.submitBatch(chunk);
    for await (const job of inOrderOfEnd(job_ids, concurrency, (id) =>
      client.waitForJob(id, { timeoutMs }),
    )) {
      progress.done++;
      if (job.status !== 'completed') progress.failed++;
      onProgress?.({ ...progress });
      yield job;
    }
  }
}
