import { sql } from 'kysely';
import { TERMINAL_STATUSES } from '../contract/errors';
import type { Db } from './schema';

// The history retention's statements: which (day, key) slices of the history may go, and their
// deletion in short batches with the rows that refer to their jobs.

/** One UTC day (`YYYY-MM-DD`) of one key's history. */
export interface HistorySlice {
  day: string;
  apiKeyId: string;
}

/**
 * The (day, key) slices the retention may delete, oldest first: days that ended more than
 * `historyDays` days ago, rolled up with every job of theirs ended (their figures are final, see
 * daysToRollUp), whose history is still there.
 */
export async function slicesPastRetention(db: Db, historyDays: number): Promise<HistorySlice[]> {
  const rows = await db
    .selectFrom('omniscrape.daily_usage_rollup')
    .select([sql<string>`day::text`.as('day'), 'api_key_id'])
    .where('history_deleted_at', 'is', null)
    .where(sql<boolean>`unfinished = 0`)
    .where(sql<boolean>`day < ((now() - make_interval(days => ${historyDays})) at time zone 'UTC')::date`)
    .orderBy('day')
    .orderBy('api_key_id')
    .execute();
  return rows.map((r) => ({ day: r.day, apiKeyId: r.api_key_id }));
}

/** The slice's rows: the key's, created within the day (scrape_jobs_key_created_idx). */
const inSlice = ({ day, apiKeyId }: HistorySlice) =>
  sql<boolean>`api_key_id = ${apiKeyId}
      and created_at >= ${day}::date::timestamp at time zone 'UTC'
      and created_at < (${day}::date + 1)::timestamp at time zone 'UTC'`;

/**
 * Deletes up to `batchSize` ended jobs of the slice, in one short transaction, with what refers to
 * them: their result (by its foreign key's cascade), webhook and delivery attempts, their places in
 * their batch, and the batches left with no job. Returns how many jobs went. SKIP LOCKED: two runs
 * that overlap share the work rather than wait on each other.
 */
export async function deleteHistoryBatch(db: Db, slice: HistorySlice, batchSize: number): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ deleted: string; batch_ids: string[] | null }>`
      with doomed as (
        select id from omniscrape.scrape_jobs
         where ${inSlice(slice)} and status in (${sql.join(TERMINAL_STATUSES.map((s) => sql.lit(s)))})
         limit ${batchSize}
           for update skip locked
      ), jobs as (
        delete from omniscrape.scrape_jobs j using doomed d where j.id = d.id returning j.id, j.batch_id
      ), webhooks as (
        delete from omniscrape.job_webhooks w using jobs where w.job_id = jobs.id
      ), deliveries as (
        delete from omniscrape.webhook_deliveries w using jobs where w.job_id = jobs.id
      ), places as (
        delete from omniscrape.batch_jobs b using jobs where b.batch_id = jobs.batch_id and b.job_id = jobs.id
      )
      select count(*) as deleted, array_agg(distinct batch_id) filter (where batch_id is not null) as batch_ids
        from jobs`.execute(trx);
    const batchIds = rows[0]?.batch_ids ?? [];
    // A second statement: the one above does not see the places it deleted.
    if (batchIds.length > 0)
      await sql`delete from omniscrape.batches b
                 where b.id = any(${batchIds}::uuid[])
                   and not exists (select 1 from omniscrape.batch_jobs j where j.batch_id = b.id)`.execute(
        trx,
      );
    return Number(rows[0]?.deleted ?? 0);
  });
}

/**
 * Records that the slice's history is gone, once none of its rows is left (none locked by another
 * run, none unfinished); returns whether it did. From then on the slice's roll-up is final.
 */
export async function markHistoryDeleted(db: Db, slice: HistorySlice): Promise<boolean> {
  const result = await db
    .updateTable('omniscrape.daily_usage_rollup')
    .set({ history_deleted_at: sql<Date>`now()` })
    .where('day', '=', sql<Date>`${slice.day}::date`)
    .where('api_key_id', '=', slice.apiKeyId)
    .where(sql<boolean>`not exists (select 1 from omniscrape.scrape_jobs where ${inSlice(slice)})`)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}
