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
 * Makes the current transaction commit without waiting for its WAL flush. Only for the usage
 * counter, whose loss in a crash costs nothing but a few uncounted scrapes. Job state is never
 * written this way: a claim lost in a crash while pg-boss's own claim survived would strand the job.
 */
export async function commitWithoutFlush(db: Db): Promise<void> {
  await sql`set local synchronous_commit = off`.execute(db);
}

/** Scrapes of the key being processed now, sync and async together (optionally not counting one job). */
export async function countProcessing(db: Db, apiKeyId: string, exceptJobId?: string): Promise<number> {
  const row = await db
    .selectFrom('omniscrape.scrape_jobs')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('api_key_id', '=', apiKeyId)
    .where('status', '=', 'processing')
    .$if(exceptJobId !== undefined, (qb) => qb.where('id', '<>', exceptJobId!))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The key's queued jobs, counted only up to `cap` so the check stays cheap however long the queue. */
export async function countQueuedUpTo(db: Db, apiKeyId: string, cap: number): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from (
      select 1 from omniscrape.scrape_jobs where api_key_id = ${apiKeyId} and status = 'queued' limit ${cap}
    ) queued`.execute(db);
  return Number(rows[0]?.n ?? 0);
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
 * Counts one successful scrape against the key's month. It runs after the scrape's outcome is
 * committed, in a short transaction of its own without a WAL flush: the counter row is hot (one per
 * key), so it must not be held across a durable commit. A crash can lose the last few counts, which
 * only lets a key go a few scrapes over its quota.
 */
export async function recordSuccessfulScrape(db: Db, apiKeyId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await commitWithoutFlush(trx);
    await trx
      .insertInto('omniscrape.key_usage')
      .values({ api_key_id: apiKeyId, month: thisMonth, successful_scrapes: 1 })
      .onConflict((oc) => oc.columns(['api_key_id', 'month']).doUpdateSet({ successful_scrapes: sql`key_usage.successful_scrapes + 1` }))
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

export async function concurrencyLimitOfJobKey(db: Db, jobId: string): Promise<{ apiKeyId: string; limit: number | null } | undefined> {
  const row = await db
    .selectFrom('omniscrape.scrape_jobs as j')
    .innerJoin('omniscrape.api_keys as k', 'k.id', 'j.api_key_id')
    .select(['j.api_key_id', 'k.concurrency_limit'])
    .where('j.id', '=', jobId)
    .executeTakeFirst();
  return row && { apiKeyId: row.api_key_id, limit: row.concurrency_limit };
}
