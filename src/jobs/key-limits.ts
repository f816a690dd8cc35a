import type { Config } from '../config';
import { monthlyQuotaExceeded, tooManyQueuedJobs } from '../errors';
import type { ApiKeyIdentity } from '../store/api-keys';
import type { Db } from '../store/database';
import { countQueuedUpTo, successfulScrapesThisMonth, type KeyLimits } from '../store/key-limits';

/**
 * Per-key limits, in the documented shapes:
 * - concurrency: scrapes being processed at once, sync and async together. A sync scrape over it
 *   answers 429 CONCURRENCY_LIMIT; async jobs wait their turn (pg-boss group concurrency, one group
 *   per key, so a key at its limit never blocks another key's jobs).
 * - max queued: async jobs waiting; over it, 429 TOO_MANY_QUEUED_JOBS.
 * - monthly quota: successful scrapes per calendar month (UTC); over it, 402 MONTHLY_QUOTA_EXCEEDED.
 */
export function limitsOf(key: ApiKeyIdentity, config: Pick<Config, 'defaultConcurrency' | 'defaultMaxQueued'>): KeyLimits {
  return {
    concurrency: key.concurrency_limit ?? config.defaultConcurrency,
    maxQueued: key.max_queued ?? config.defaultMaxQueued,
    monthlyQuota: key.monthly_quota ?? undefined,
    customConcurrency: key.concurrency_limit !== null,
  };
}

/**
 * After how long without a heartbeat an async job stops holding its key's concurrency slot: two
 * heartbeat periods (workers refresh it every half period), the point where pg-boss too has long
 * given the job up for lost.
 */
export function slotStaleAfterSeconds(config: Pick<Config, 'heartbeatSeconds'>): number {
  return 2 * config.heartbeatSeconds;
}

export async function checkMonthlyQuota(db: Db, key: ApiKeyIdentity, limits: KeyLimits): Promise<void> {
  if (limits.monthlyQuota === undefined) return;
  if ((await successfulScrapesThisMonth(db, key.id)) >= limits.monthlyQuota) throw monthlyQuotaExceeded(limits.monthlyQuota);
}

/** How old a key's queued-job count may be before a submission counts again. */
export const QUEUED_COUNT_MAX_AGE_MS = 1_000;

/**
 * The queued-job cap, checked without counting a key's queue on every submission: a count is
 * reused for up to a second, plus the submissions this process accepted since, and taken afresh
 * whenever that estimate reaches the cap. Concurrent submissions share one count (measured: without
 * that, every request arriving as the estimate aged counted the queue itself, and those counts took
 * more Postgres time than all the inserts). So the cap holds exactly for one API process and within
 * a second's worth of submissions across several.
 */
export class QueueCapCheck {
  readonly #estimates = new Map<string, QueuedEstimate>();
  readonly #counting = new Map<string, Promise<QueuedEstimate>>();

  /** Throws when the key's queue is full; otherwise returns about how many of its jobs are queued ahead. */
  async check(db: Db, key: ApiKeyIdentity, limits: KeyLimits): Promise<number> {
    let estimate = this.#estimates.get(key.id);
    if (!estimate || Date.now() - estimate.at >= QUEUED_COUNT_MAX_AGE_MS || estimate.count >= limits.maxQueued) {
      estimate = await this.#recount(db, key.id, limits.maxQueued);
    }
    if (estimate.count >= limits.maxQueued) throw tooManyQueuedJobs(limits.maxQueued);
    return estimate.count++;
  }

  #recount(db: Db, keyId: string, cap: number): Promise<QueuedEstimate> {
    let counting = this.#counting.get(keyId);
    if (!counting) {
      counting = countQueuedUpTo(db, keyId, cap)
        .then((count) => {
          if (this.#estimates.size > 10_000) this.#estimates.clear(); // bounded memory with many keys
          const estimate = { count, at: Date.now() };
          this.#estimates.set(keyId, estimate);
          return estimate;
        })
        .finally(() => this.#counting.delete(keyId));
      this.#counting.set(keyId, counting);
    }
    return counting;
  }
}

interface QueuedEstimate {
  count: number;
  at: number;
}

/**
 * The pg-boss priority of a new job: its key's queue served in rounds. A key's first `concurrency`
 * queued jobs get priority 0, the next ones -1, and so on, so a key's deep backlog sorts behind
 * every other key's first round. Within a key the order stays first in, first out. Besides
 * fairness, this keeps pg-boss's fetch short: it walks its queue in priority order and checks each
 * job's group against its limit, so a full key's backlog at the front would be walked, job by job,
 * on every fetch (measured: 100,000 such jobs cost a fetch about 100 ms); in rounds, at most one
 * round per full key lies in front.
 */
export function priorityOf(queuedAhead: number, limits: KeyLimits): number {
  return -Math.min(Math.floor(queuedAhead / limits.concurrency), 1_000_000_000) || 0; // never -0
}

/** The pg-boss group of a key's jobs: its id, and its own limit as the tier name when it has one. */
export function groupOf(key: ApiKeyIdentity, limits: KeyLimits): { id: string; tier?: string } {
  return limits.customConcurrency ? { id: key.id, tier: String(limits.concurrency) } : { id: key.id };
}
