import { sql } from 'kysely';
import type { Db } from './database';

/** The limits a key is held to, with the service defaults filled in. */
export interface KeyLimits {
  concurrency: number;
  maxQueued: number;
  /** undefined: no quota. */
  monthlyQuota: number | undefined;
  /** Set when the key has a concurrency limit of its own (it names the pg-boss group tier). */
  customConcurrency: boolean;
}

/**
 * Serialises the limit checks of one key across all processes for the rest of the transaction.
 * Only that key's checks wait on each other; other keys are not affected.
 */
export async function lockKeyForLimits(db: Db, apiKeyId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${apiKeyId}::text, 7341))`.execute(db);
}

/**
 * lockKeyForLimits for several keys at once (a worker's batch of claims), always in the same order
 * so two processes locking overlapping sets cannot deadlock.
 */
export async function lockKeysForLimits(db: Db, apiKeyIds: readonly string[]): Promise<void> {
  const keys = [...new Set(apiKeyIds)].sort();
  if (keys.length === 1) return lockKeyForLimits(db, keys[0]!);
  if (keys.length === 0) return;
  await sql`
    select pg_advisory_xact_lock(hashtextextended(k::text, 7341))
      from (select k from unnest(${keys}::text[]) k order by k) ordered`.execute(db);
}

/**
 * Makes the current transaction commit without waiting for its WAL flush. Only for the usage
 * counter, whose loss in a crash costs nothing but a few uncounted scrapes. Job state is never
 * written this way: a claim lost in a crash while pg-boss's own claim survived would strand the job.
 */
export async function commitWithoutFlush(db: Db): Promise<void> {
  await sql`set local synchronous_commit = off`.execute(db);
}

/**
 * Whether a `processing` row holds one of its key's slots: a sync scrape always (its API process
 * is running it; abandoned ones are failed by maintenance), an async job while its worker's
 * heartbeat is fresh. A dead worker's job stops counting after `staleAfterSeconds`, rather than
 * keeping the slot until pg-boss hands the job out again (with a busy key's backlog in front of it,
 * that could take arbitrarily long).
 */
const holdsSlot = (staleAfterSeconds: number) =>
  sql<boolean>`(j.kind = 'sync' or coalesce(j.heartbeat_at, j.updated_at) > now() - make_interval(secs => ${staleAfterSeconds}))`;

/** Scrapes of the key being processed now, sync and async together. */
export async function countProcessing(db: Db, apiKeyId: string, staleAfterSeconds: number): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from omniscrape.scrape_jobs j
     where j.api_key_id = ${apiKeyId} and j.status = 'processing' and ${holdsSlot(staleAfterSeconds)}`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

/** A key's concurrency limit (null: the service default) and its scrapes being processed now. */
export interface KeyConcurrency {
  limit: number | null;
  processing: number;
}

/**
 * KeyConcurrency of several keys at once (a worker's batch of claims), not counting the jobs
 * `exceptJobIds` (the batch itself, some of which may still say `processing` from a lost worker).
 */
export async function concurrencyOfKeys(
  db: Db,
  apiKeyIds: readonly string[],
  exceptJobIds: readonly string[],
  staleAfterSeconds: number,
): Promise<Map<string, KeyConcurrency>> {
  const keys = [...new Set(apiKeyIds)];
  if (keys.length === 0) return new Map();
  const { rows } = await sql<{ id: string; concurrency_limit: number | null; processing: string }>`
    select k.id, k.concurrency_limit,
           (select count(*) from omniscrape.scrape_jobs j
             where j.api_key_id = k.id and j.status = 'processing' and j.id <> all(${[...exceptJobIds]}::uuid[])
               and ${holdsSlot(staleAfterSeconds)}) as processing
      from omniscrape.api_keys k
     where k.id = any(${keys}::uuid[])`.execute(db);
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
  await db.transaction().execute(async (trx) => {
    await commitWithoutFlush(trx);
    await trx
      .insertInto('omniscrape.key_usage')
      .values(rows.map(([apiKeyId, n]) => ({ api_key_id: apiKeyId, month: thisMonth, successful_scrapes: n })))
      .onConflict((oc) =>
        oc.columns(['api_key_id', 'month']).doUpdateSet({ successful_scrapes: sql`key_usage.successful_scrapes + excluded.successful_scrapes` }),
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
