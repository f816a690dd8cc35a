import type { AsyncScrapeRequest, Job, OmniscrapeClient } from './client';
import { OmniscrapeError } from './errors';

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
   * ended at a time: the next one queues while the tail of the one before runs. When the key's
   * queued-jobs limit refuses a batch, fewer are sent, once jobs have ended.
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
    /** Jobs the gateway would not cancel: already started or ended. They run to their end unseen. */
    readonly notCancelled: number,
    /** Jobs whose cancel did not reach the gateway: they may still be queued. */
    readonly unknown: number,
    options?: ErrorOptions,
  ) {
    super(`aborted: ${cancelled} queued jobs cancelled, ${notCancelled} already started`, options);
  }
}

type Settled = { id: string; job: Job } | { id: string; error: unknown };

/** Cancels `ids`, a few at a time: [cancelled, refused (started or ended), not reached]. */
async function cancelAll(client: OmniscrapeClient, ids: string[]): Promise<[number, number, number]> {
  const counts: [number, number, number] = [0, 0, 0];
  const queue = [...ids];
  const cancelNext = async (): Promise<void> => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const outcome = await client.cancel(id).then(
        (job) => (job.status === 'cancelled' ? 0 : 1),
        (error: unknown) => (error instanceof OmniscrapeError && error.status > 0 ? 1 : 2),
      );
      counts[outcome]++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(10, queue.length) }, cancelNext));
  return counts;
}

/**
 * The requests not yet submitted, and the jobs submitted but not yet waited on. Keeps at most two
 * batches in flight; a refusal for want of room (a 429 or 503 while jobs are in flight) is not an
 * error: the next batch goes, smaller, once half of those jobs have ended.
 */
class SubmitWindow {
  /** Submitted, not waited on yet. */
  readonly submitted: string[] = [];
  private next = 0;
  private chunkSize: number;
  /** After a refusal: submit again once no more than this many jobs are in flight. */
  private resumeAt = Infinity;

  constructor(
    private readonly client: OmniscrapeClient,
    private readonly requests: Array<string | AsyncScrapeRequest>,
    private readonly batchSize: number,
  ) {
    this.chunkSize = batchSize;
  }

  get unsent(): boolean {
    return this.next < this.requests.length;
  }

  /** Submits batches while fewer than `batchSize` jobs are in flight (`waiting` plus those here). */
  async fill(waiting: number): Promise<void> {
    for (;;) {
      const inFlight = waiting + this.submitted.length;
      if (!this.unsent || inFlight > this.batchSize || inFlight > this.resumeAt) return;
      const chunk = this.requests
        .slice(this.next, this.next + this.chunkSize)
        .map((r) => (typeof r === 'string' ? { url: r } : r));
      try {
        // With jobs in flight a refusal is not retried here: they end meanwhile, and make room.
        const { job_ids } = await this.client.submitBatch(chunk, inFlight > 0 ? { retries: 0 } : {});
        this.next += chunk.length;
        this.submitted.push(...job_ids);
        this.resumeAt = Infinity;
        this.chunkSize = Math.min(this.batchSize, this.chunkSize * 2);
      } catch (error) {
        if (!(error instanceof OmniscrapeError) || (error.status !== 429 && error.status !== 503))
          throw error;
        if (inFlight > 0) {
          this.resumeAt = Math.floor(inFlight / 2);
          this.chunkSize = Math.max(1, Math.ceil(this.chunkSize / 2));
          return;
        }
        if (error.code !== 'TOO_MANY_QUEUED_JOBS' || this.chunkSize === 1) throw error;
        this.chunkSize = Math.ceil(this.chunkSize / 2); // a batch larger than the key may queue at all
      }
    }
  }
}

const wholeNumber = (name: string, value: number) => {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${name} must be a whole number of 1 or more`);
};

/**
 * Scrapes many URLs as jobs, yielding each job once it has ended (waits are started in the order
 * of submission, and jobs come out in the order they end). However the run ends early (an abort,
 * an error, or a loop that stops asking), its held waits end and the jobs still queued are cancelled.
 */
export async function* scrapeMany(
  client: OmniscrapeClient,
  requests: Array<string | AsyncScrapeRequest>,
  options: ScrapeManyOptions = {},
): AsyncGenerator<Job, void, undefined> {
  const { concurrency = 10, batchSize = 100, timeoutMs, onProgress, signal } = options;
  wholeNumber('concurrency', concurrency);
  wholeNumber('batchSize', batchSize);
  const progress: ScrapeManyProgress = { total: requests.length, done: 0, failed: 0 };
  const window = new SubmitWindow(client, requests, batchSize);
  /** Waited on, not ended yet. */
  const waiting = new Map<string, Promise<Settled>>();
  const ended = new AbortController();
  const waitSignal = signal ? AbortSignal.any([signal, ended.signal]) : ended.signal;
  let finished = false;
  try {
    while (window.unsent || window.submitted.length > 0 || waiting.size > 0) {
      signal?.throwIfAborted();
      // Not aborted midway: a batch the server took must be known here, to be cancelled.
      await window.fill(waiting.size);
      signal?.throwIfAborted();
      while (waiting.size < concurrency && window.submitted.length > 0) {
        const id = window.submitted.shift()!;
        const settle = client.waitForJob(id, { timeoutMs, signal: waitSignal }).then(
          (job): Settled => ({ id, job }),
          (error: unknown): Settled => ({ id, error }),
        );
        waiting.set(id, settle);
      }
      const settled = await Promise.race(waiting.values());
      if ('error' in settled) throw settled.error; // still in `waiting`: cancelled below
      waiting.delete(settled.id);
      progress.done++;
      if (settled.job.status !== 'completed') progress.failed++;
      onProgress?.({ ...progress });
      yield settled.job;
    }
    finished = true;
  } catch (error) {
    if (!signal?.aborted) throw error;
    const counts = await cancelAll(client, [...waiting.keys(), ...window.submitted]);
    finished = true; // cancelled above
    throw new ScrapeManyAbortedError(...counts, { cause: error });
  } finally {
    ended.abort();
    if (!finished) await cancelAll(client, [...waiting.keys(), ...window.submitted]);
  }
}
