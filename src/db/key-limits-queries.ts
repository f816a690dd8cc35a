import { sql } from 'kysely';
import { transactionWithSettings } from './transactions';
import type { Db } from './schema';

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
 * The key's queued jobs, counted only up to `cap` so the check stays cheap however long the queue.
 * 'queued' is a literal, not a parameter: the partial index on a key's queued jobs (migration
 * 0002) serves only a statement whose text says so, and this one runs prepared, with a generic plan.
 */
export async function countQueuedUpTo(db: Db, apiKeyId: string, cap: number): Promise<number> {
  const row = await db
    .selectFrom((qb) =>
      qb
        .selectFrom('omniscrape.scrape_jobs')
        .select((eb) => eb.lit(1).as('one'))
        .where('api_key_id', '=', apiKeyId)
        .where('status', '=', sql.lit('queued'))
        .limit(cap)
        .as('queued'),
    )
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** The columns of pg-boss's job table this store reads (pg-boss owns the table). */
interface PgBossJobTable {
  name: string;
  state: string;
  priority: number;
  blocked: boolean;
}

/**
 * The round a pg-boss queue is serving now (see KeyRounds): minus the highest priority among its
 * waiting jobs, or null when none wait. One step down pg-boss's queue-order index, whose
 * predicate (`state < 'active' and not blocked`) the statement repeats literally so a generic plan
 * can use it.
 */
export async function queueHeadRound(db: Db, schema: string, queue: string): Promise<number | null> {
  const row = await db
    .withTables<{ job: PgBossJobTable }>()
    .withSchema(schema)
    .selectFrom('job')
    .select((eb) => eb.fn.max('priority').as('priority'))
    .where('name', '=', queue)
    .where('state', '<', sql.lit('active'))
    .where((eb) => eb.not(eb.ref('blocked')))
    .executeTakeFirst();
  const priority = row?.priority;
  return priority === null || priority === undefined ? null : -priority || 0;
}

/** The first day of this month in UTC, key_usage's `month` (read back as a Date, written as text). */
const thisMonth = <T extends Date | string>() => sql<T>`date_trunc('month', now() at time zone 'utc')::date`;

/** The key's successful scrapes this month (UTC), what its monthly quota is checked against. */
export async function successfulScrapesThisMonth(db: Db, apiKeyId: string): Promise<number> {
  const row = await db
    .selectFrom('omniscrape.key_usage')
    .select('successful_scrapes')
    .where('api_key_id', '=', apiKeyId)
    .where('month', '=', thisMonth<Date>())
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
  // Job state is written without a flush only by the claim (CLAIM_TRANSACTION_SETTINGS), whose
  // pg-boss half and history half share one transaction: a crash loses both, and the job is simply
  // queued again. A submission answered 202, a job's outcome, and any history change apart from its
  // pg-boss change commit with a flush.
  await transactionWithSettings(db, { synchronous_commit: 'off' }, async (trx) => {
    await trx
      .insertInto('omniscrape.key_usage')
      .values(
        rows.map(([apiKeyId, n]) => ({
          api_key_id: apiKeyId,
          month: thisMonth<string>(),
          successful_scrapes: n,
        })),
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
