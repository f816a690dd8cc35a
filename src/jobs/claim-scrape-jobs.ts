import { fromKysely, type FetchOptions, type Job } from 'pg-boss';
import type { ServiceContext } from '../context';
import { CLAIM_TRANSACTION_SETTINGS, transactionWithSettings } from '../db/transactions';
import type { ScrapeJobRow } from '../db/schema';
import { requeueScrapeJobs } from '../db/scrape-jobs';
import { lockAndCountKeySlots, type KeyConcurrency } from '../db/statements/lock-and-count-key-slots';
import { startScrapeAttempts } from '../db/statements/start-scrape-attempts';
import { slotLeases } from './key-limits';
import { attemptOf, SCRAPE_QUEUE, type ScrapeJobData } from './queue';

/** How long a job waits before it is tried again when its key's sync scrapes fill the key's limit. */
const KEY_BUSY_RETRY_SECONDS = 1;

/** A job this worker holds: the pg-boss attempt and the history row it started. */
export interface ClaimedScrape {
  job: Job<ScrapeJobData>;
  row: ScrapeJobRow;
}

export interface ClaimedBatch {
  claimed: ClaimedScrape[];
  /** Jobs pg-boss handed out, claimed or not. */
  fetched: number;
  /** Some key is at its limit: fewer jobs than asked for may come back while others wait. */
  capped: boolean;
  /** Keys found full, whose jobs were put back to wait (see BusyKeys). */
  busyKeys: string[];
}

/**
 * Claims up to `max` scrape jobs in one transaction: pg-boss `fetch` (one group per key, each
 * limited to the key's concurrency) and the start of each job's attempt in its history row, within
 * its key's concurrency limit, which also counts the key's sync scrapes (pg-boss's group limit sees
 * only the queue). A job whose key is full right now waits: a copy is queued for a second later and
 * this attempt completes. A job that already ended (its outcome was written before a lost worker's
 * claim lapsed) just completes. One transaction per batch keeps each key's limit lock held for one
 * commit per batch rather than one per job.
 */
export async function claimScrapeJobs(
  ctx: ServiceContext,
  max: number,
  fetchOptions: Omit<FetchOptions, 'batchSize'>,
): Promise<ClaimedBatch> {
  const { boss } = ctx;
  const limitOf = (key: KeyConcurrency) => key.limit ?? ctx.config.defaultConcurrency;
  /** Jobs whose status this claim changed: announced once it committed. */
  let changed: string[] = [];
  const batch = await transactionWithSettings(ctx.store.db, CLAIM_TRANSACTION_SETTINGS, async (trx) => {
    changed = [];
    const db = fromKysely(trx);
    const jobs = await boss.fetch<ScrapeJobData>(SCRAPE_QUEUE, { ...fetchOptions, batchSize: max, db });
    if (jobs.length === 0) return { claimed: [], fetched: 0, capped: false, busyKeys: [] };
    const jobIds = jobs.map((j) => j.data.jobId);
    // Every job is queued in its key's pg-boss group (submitScrapeJob), so the group names the key.
    const keyOf = new Map(jobs.flatMap((j) => (j.groupId ? [[j.data.jobId, j.groupId] as const] : [])));
    const keys = await lockAndCountKeySlots(
      trx,
      [...new Set(keyOf.values())],
      jobIds,
      slotLeases(ctx.config),
    );
    const { admitted, busy } = admitWithinLimits(
      jobs,
      (job) => keys.get(keyOf.get(job.data.jobId) ?? ''),
      limitOf,
    );
    const rows = await startScrapeAttempts(
      trx,
      admitted.map((j) => j.data.jobId),
    );
    const rowOf = new Map(rows.map((r) => [r.id, r]));
    changed = rows.map((r) => r.id);
    const ended = admitted.filter((j) => !rowOf.has(j.data.jobId));
    if (busy.length > 0) {
      // A busy key's job goes back to queued and waits its turn as a copy in its group (retryCopy).
      const busyIds = busy.map((j) => j.data.jobId);
      await requeueScrapeJobs(trx, busyIds);
      changed.push(...busyIds);
      await boss.insert(SCRAPE_QUEUE, busy.map(retryCopy), { db });
    }
    const settled = [...ended, ...busy];
    if (settled.length > 0) await boss.complete(SCRAPE_QUEUE, settled.map(attemptOf), null, { db });
    return {
      claimed: admitted.flatMap((job) => {
        const row = rowOf.get(job.data.jobId);
        return row ? [{ job, row }] : [];
      }),
      fetched: jobs.length,
      capped: [...keys.values()].some((key) => key.processing >= limitOf(key)),
      busyKeys: [...new Set(busy.map((j) => keyOf.get(j.data.jobId)!))],
    };
  });
  ctx.statusNotices.announce('changed', changed);
  return batch;
}

/** Splits a fetched batch into jobs within their key's limit (each then counted) and jobs whose key is full. */
function admitWithinLimits(
  jobs: Job<ScrapeJobData>[],
  keyOf: (job: Job<ScrapeJobData>) => KeyConcurrency | undefined,
  limitOf: (key: KeyConcurrency) => number,
): { admitted: Job<ScrapeJobData>[]; busy: Job<ScrapeJobData>[] } {
  const admitted: Job<ScrapeJobData>[] = [];
  const busy: Job<ScrapeJobData>[] = [];
  for (const job of jobs) {
    const key = keyOf(job);
    if (key && key.processing >= limitOf(key)) busy.push(job);
    else {
      if (key) key.processing++;
      admitted.push(job);
    }
  }
  return { admitted, busy };
}

/** The copy a busy key's job waits as: in the same group, a second later, in its own round. */
function retryCopy(job: Job<ScrapeJobData>) {
  const { groupId, groupTier } = job;
  return {
    data: job.data,
    // Its own round: with priority 0 it would sort ahead of every round being served.
    priority: job.data.priority ?? 0,
    startAfter: KEY_BUSY_RETRY_SECONDS,
    ...(groupId ? { group: { id: groupId, ...(groupTier ? { tier: groupTier } : {}) } } : {}),
  };
}

/**
 * Keys found full at a claim are left out of this worker's fetches for as long as their jobs wait
 * (pg-boss `ignoreGroups`), so the next claim goes to other keys' jobs instead of fetching the busy
 * key's backlog again one job at a time.
 */
export class BusyKeys {
  readonly #until = new Map<string, number>();

  add(keys: string[]): void {
    for (const key of keys) this.#until.set(key, Date.now() + KEY_BUSY_RETRY_SECONDS * 1000);
  }

  fetchOption(): { ignoreGroups?: string[] } {
    const now = Date.now();
    for (const [key, until] of this.#until) if (until <= now) this.#until.delete(key);
    return this.#until.size > 0 ? { ignoreGroups: [...this.#until.keys()] } : {};
  }
}
