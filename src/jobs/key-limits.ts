import { LRUCache } from 'lru-cache';
import type { Config } from '../config';
import { monthlyQuotaExceeded, tooManyQueuedJobs } from '../domain-errors';
import type { ApiKeyIdentity } from '../db/api-keys';
import type { Db } from '../db/schema';
import { countQueuedUpTo, successfulScrapesThisMonth, type KeyLimits } from '../db/key-limits-queries';
import type { SlotLeases } from '../db/statements/lock-and-count-key-slots';

/**
 * Per-key limits, in the documented shapes:
 * - concurrency: scrapes being processed at once, sync and async together. A sync scrape over it
 *   is refused (CONCURRENCY_LIMIT); async jobs wait their turn (pg-boss group concurrency, one group
 *   per key, so a key at its limit never blocks another key's jobs).
 * - max queued: async jobs waiting; over it, TOO_MANY_QUEUED_JOBS.
 * - monthly quota: successful scrapes per calendar month (UTC); over it, MONTHLY_QUOTA_EXCEEDED.
 */
export function limitsOf(
  key: ApiKeyIdentity,
  config: Pick<Config, 'defaultConcurrency' | 'defaultMaxQueued'>,
): KeyLimits {
  return {
    concurrency: key.concurrency_limit ?? config.defaultConcurrency,
    maxQueued: key.max_queued ?? config.defaultMaxQueued,
    monthlyQuota: key.monthly_quota ?? undefined,
    customConcurrency: key.concurrency_limit !== null,
  };
}

/**
 * How long a running scrape holds its key's concurrency slot without a sign of life. An async job:
 * two heartbeat periods (workers refresh it every half period), the point where pg-boss too has
 * long given the job up for lost. A sync scrape: its lease (OMNISCRAPE_SYNC_LEASE_SECONDS), which
 * its API process renews while it runs, so a scrape whose process died frees its slot within that.
 */
export function slotLeases(config: Pick<Config, 'heartbeatSeconds' | 'syncLeaseSeconds'>): SlotLeases {
  return { asyncSeconds: 2 * config.heartbeatSeconds, syncSeconds: config.syncLeaseSeconds };
}

export async function checkMonthlyQuota(db: Db, key: ApiKeyIdentity, limits: KeyLimits): Promise<void> {
  if (limits.monthlyQuota === undefined) return;
  if ((await successfulScrapesThisMonth(db, key.id)) >= limits.monthlyQuota)
    throw monthlyQuotaExceeded(limits.monthlyQuota);
}

/** How old a key's queued-job count may be before a submission counts again. */
export const QUEUED_COUNT_MAX_AGE_MS = 1_000;
/** Keys whose queued-job counts are kept at most; past it the least recently used goes. */
const QUEUED_COUNT_MAX_KEYS = 10_000;

/**
 * The queued-job cap, checked without counting a key's queue on every submission: a count is
 * reused for up to a second, plus the submissions this process accepted since, and taken afresh
 * whenever that estimate reaches the cap. Concurrent submissions share one count: otherwise every
 * request arriving as the estimate aged would count the queue itself, which costs Postgres more
 * than the inserts do (docs/performance.md). So the cap holds exactly for one API process and within
 * a second's worth of submissions across several.
 */
export class QueueCapCheck {
  /** Key id → its queued jobs as last counted, plus those accepted here since. */
  readonly #estimates = new LRUCache<string, QueuedEstimate, CountContext>({
    max: QUEUED_COUNT_MAX_KEYS,
    ttl: QUEUED_COUNT_MAX_AGE_MS,
    fetchMethod: async (keyId, _stale, { context }) => ({
      count: await countQueuedUpTo(context.db, keyId, context.cap),
    }),
  });

  /**
   * Throws when the key's queue has no room for `jobs` more (a batch is taken whole or not at
   * all); otherwise counts them as queued.
   */
  async check(db: Db, key: ApiKeyIdentity, limits: KeyLimits, jobs = 1): Promise<void> {
    const context = { db, cap: limits.maxQueued };
    const status: LRUCache.Status<string, QueuedEstimate, CountContext> = {};
    let estimate = await this.#estimates.forceFetch(key.id, { context, status });
    // Full by an estimate that was not just counted: count afresh (a count in flight is shared).
    if (status.fetch === 'hit' && estimate.count + jobs > limits.maxQueued)
      estimate = await this.#estimates.forceFetch(key.id, { context, forceRefresh: true });
    if (estimate.count + jobs > limits.maxQueued) throw tooManyQueuedJobs(limits.maxQueued);
    estimate.count += jobs;
  }
}

interface QueuedEstimate {
  count: number;
}

/** What a count needs: the database, and the cap it counts up to. */
interface CountContext {
  db: Db;
  cap: number;
}

/** How old the queue's head round may be before a submission reads it again. */
const HEAD_MAX_AGE_MS = 1_000;
/** pg-boss priorities are Postgres integers; rounds stop counting here (then order is by age). */
const DEEPEST_ROUND = 1_000_000_000;

/**
 * The pg-boss priority of each new job: keys take turns, a round of their concurrency each
 * (start-time fair queueing, in whole rounds). pg-boss fetches higher priorities first and the
 * oldest first within one, and a job's priority is minus its round. Each key keeps a clock: the
 * round its next job starts in, which moves on by one every `concurrency` jobs. A key with nothing
 * ahead in its clock starts in the round the queue is serving now (its head, re-read at most once
 * a second), so a key with a deep backlog never makes a newcomer wait behind that whole backlog,
 * and a newcomer never jumps ahead of rounds already being served.
 *
 * - First in, first out within a key: a key's clock only moves forward, so its later jobs never
 *   sort ahead of its earlier ones (per API process; several processes each keep their own clocks).
 * - No starvation: every job waits behind a bounded number of rounds, each at most one
 *   `concurrency` of jobs per key.
 * - Short fetches: pg-boss's fetch walks its queue in priority order and checks each job's group
 *   against its limit, so a full key's backlog in front would be walked job by job on every fetch,
 *   at a cost that grows with the backlog (docs/performance.md). In rounds, a full key has at most one
 *   round of jobs in front of any other key's job per round between them.
 *
 * When the queue is found empty the clocks start again from round 0 (a job accepted but not yet
 * committed at that moment can then be overtaken by its key's next ones: at most one submit
 * batch's worth).
 */
export class KeyRounds {
  readonly #clocks = new Map<string, { round: number; used: number }>();
  #head = 0;
  /** The head, read at most once per headMaxAgeMs; submissions meanwhile share the read. */
  readonly #headRead: LRUCache<'head', number>;

  /**
   * `readHead` returns the round of the queue's first job (minus its priority), or null when the
   * queue is empty; with `headMaxAgeMs` 0 every submission reads it.
   */
  constructor(
    readHead: () => Promise<number | null>,
    private readonly headMaxAgeMs = HEAD_MAX_AGE_MS,
  ) {
    this.#headRead = new LRUCache<'head', number>({
      max: 1,
      ttl: Math.max(1, headMaxAgeMs),
      fetchMethod: async () => this.#moveHead(await readHead()),
    });
  }

  async priorityOf(keyId: string, concurrency: number): Promise<number> {
    const [priority] = await this.prioritiesOf(keyId, concurrency, 1);
    return priority!;
  }

  /** The priorities of `jobs` new jobs of one key, in order (a batch: its jobs fill rounds in turn). */
  async prioritiesOf(keyId: string, concurrency: number, jobs: number): Promise<number[]> {
    await this.#freshHead();
    const clock = this.#clocks.get(keyId);
    let round = this.#head;
    let used = 0;
    if (clock && clock.round >= this.#head) ({ round, used } = clock);
    const priorities: number[] = [];
    for (let i = 0; i < jobs; i++) {
      priorities.push(-round || 0); // never -0
      used++;
      if (used >= concurrency) {
        round = Math.min(round + 1, DEEPEST_ROUND);
        used = 0;
      }
    }
    this.#clocks.set(keyId, { round, used });
    return priorities;
  }

  async #freshHead(): Promise<void> {
    await this.#headRead.fetch('head', { forceRefresh: this.headMaxAgeMs <= 0 });
  }

  /** Takes in a head just read; returns the head now served. */
  #moveHead(head: number | null): number {
    if (head === null) {
      // Nothing queued: no key is ahead of any other.
      this.#clocks.clear();
      this.#head = 0;
    } else {
      // Only forward: a lower head can only come from a job queued with an older head.
      this.#head = Math.max(this.#head, Math.min(head, DEEPEST_ROUND));
      if (this.#clocks.size > 10_000) {
        for (const [key, clock] of this.#clocks) if (clock.round < this.#head) this.#clocks.delete(key);
      }
    }
    return this.#head;
  }
}

/** The pg-boss group of a key's jobs: its id, and its own limit as the tier name when it has one. */
export function groupOf(key: ApiKeyIdentity, limits: KeyLimits): { id: string; tier?: string } {
  return limits.customConcurrency ? { id: key.id, tier: String(limits.concurrency) } : { id: key.id };
}
