import { sql } from 'kysely';
import { transactionWithSettings, type Db } from './database';

/** The limits a key is held to, with the service defaults filled in. */
export interface KeyLimits {
  concurrency: number;
  maxQueued: number;
  /** undefined: no quota. */
  monthlyQuota: number | undefined;
  /** Set when the key has a concurrency limit of its own (it names the pg-boss group tier). */
  customConcurrency: boolean;
}

/** A key's concurrency limit (null: the service default) and its scrapes being processed now. */
export interface KeyConcurrency {
  limit: number | null;
  processing: number;
}

/** How long a running scrape's proof of life stays good for its key's concurrency slot. */
export interface SlotLeases {
  /** An async job's worker heartbeat. */
  asyncSeconds: number;
  /** A sync scrape's lease, renewed by its API process (SyncScrapeLeases). */
  syncSeconds: number;
}

/**
 * Locks the keys' limit checks for the rest of the transaction (across all processes; other keys
 * are not affected) and counts each key's scrapes being processed now, sync and async together,
 * not counting the jobs `exceptJobIds` (a claim's own batch, some of which may still say
 * `processing` from a lost worker) nor scrapes whose lease has lapsed (their process is gone).
 * One round trip: the function `omniscrape.key_slots` (migrations 0004 and 0005) takes the locks in
 * one order and counts after them; what holds a slot is defined there.
 */
export async function lockAndCountKeySlots(
  db: Db,
  apiKeyIds: readonly string[],
  exceptJobIds: readonly string[],
  leases: SlotLeases,
): Promise<Map<string, KeyConcurrency>> {
  const keys = [...new Set(apiKeyIds)];
  if (keys.length === 0) return new Map();
  const { rows } = await sql<{ id: string; concurrency_limit: number | null; processing: string }>`
    select id, concurrency_limit, processing
      from omniscrape.key_slots(${keys}::uuid[], ${[...exceptJobIds]}::uuid[], ${leases.asyncSeconds}, ${leases.syncSeconds})`.execute(
    db,
  );
  return new Map(rows.map((r) => [r.id, { limit: r.concurrency_limit, processing: Number(r.processing) }]));
}

/** The key's queued jobs, counted only up to `cap` so the check stays cheap however long the queue. */
export async function countQueuedUpTo(db: Db, apiKeyId: string, cap: number): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from (
      select 1 from omniscrape.scrape_jobs where api_key_id = ${apiKeyId} and status = 'queued' limit ${cap}
    ) queued`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

/**
 * The round a pg-boss queue is serving now (see KeyRounds): minus the highest priority among its
 * waiting jobs, or null when none wait. One step down pg-boss's queue-order index.
 */
export async function queueHeadRound(db: Db, schema: string, queue: string): Promise<number | null> {
  const { rows } = await sql<{ priority: number | null }>`
    select max(priority) as priority from ${sql.table(`${schema}.job`)}
     where name = ${queue} and state < 'active' and not blocked`.execute(db);
  const priority = rows[0]?.priority;
  return priority === null || priority === undefined ? null : -priority || 0;
}

const thisMonth = sql<any>`date_trunc('month', now() at time zone 'utc')::date`;

export async function successfulScrapesThisMonth(db: Db, apiKeyId: string): Promise<number> {
  const row = await db
    .selectFrom('omniscrape.key_usage')
    .select('successful_scrapes')
    .where('api_key_id', '=', apiKeyId)
    .where('month', '=', thisMonth)
    .executeTakeFirst();
  return row?.successful_scrapes ?? 0;
}

/**
 * Counts successful scrapes against their keys' month (key id → how many). It runs after the
 * scrapes' outcomes are committed, in a short transaction of its own without a WAL flush: the
 * counter row is hot (one per key), so it must not be held across a durable commit. A crash can
 * lose the last few counts, which only lets a key go a few scrapes over its quota.
 */
export async function recordSuccessfulScrapes(db: Db, counts: ReadonlyMap<string, number>): Promise<void> {
  if (counts.size === 0) return;
  // Sorted, so two batches updating the same keys take their row locks in the same order.
  const rows = [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
  // Committed without waiting for its WAL flush: a crash loses at most a few uncounted scrapes.
  // Job state is never written this way (a claim lost in a crash while pg-boss's own claim
  // survived would strand the job).
  await transactionWithSettings(db, { synchronous_commit: 'off' }, async (trx) => {
    await trx
      .insertInto('omniscrape.key_usage')
      .values(
        rows.map(([apiKeyId, n]) => ({ api_key_id: apiKeyId, month: thisMonth, successful_scrapes: n })),
      )
      .onConflict((oc) =>
        oc.columns(['api_key_id', 'month']).doUpdateSet({
          successful_scrapes: sql`key_usage.successful_scrapes + excluded.successful_scrapes`,
        }),
      )
      .execute();
  });
}

/** The distinct per-key concurrency limits: the pg-boss group tiers workers fetch with. */
export async function customConcurrencyLimits(db: Db): Promise<number[]> {
  const rows = await db
    .selectFrom('omniscrape.api_keys')
    .select('concurrency_limit')
    .distinct()
    .where('concurrency_limit', 'is not', null)
    .execute();
  return rows.map((r) => r.concurrency_limit!);
}
