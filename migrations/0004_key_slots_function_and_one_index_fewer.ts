import { Kysely, sql } from 'kysely';

/**
 * Two changes to the history's write path, the statements every job runs several times.
 *
 * `omniscrape.key_slots(keys, except_jobs, stale_after_seconds)` locks each key for its limit
 * checks (for the rest of the transaction, in one order so two callers cannot deadlock) and then
 * counts the scrapes holding each key's slots — in one call. A single SQL statement could not do
 * both: its snapshot is taken before it runs, so it would count without seeing what a claim that
 * held the lock just committed. A volatile function's statements each take a fresh snapshot, so
 * the count runs after the lock. One round trip to Postgres instead of two, in every claim and
 * every sync scrape. What holds a slot: a sync scrape always (its API process is running it;
 * abandoned ones are failed by maintenance), an async job while its worker's heartbeat is fresh
 * (a dead worker's job stops counting after `stale_after_seconds` rather than keeping the slot
 * until pg-boss hands it out again).
 *
 * One index entry fewer per row version: each status change writes a new row version and an entry
 * in every b-tree index of the table. `scrape_jobs_unfinished_idx` (status, updated_at) is dropped:
 * the per-key partial indexes on `queued` and `processing` already answer "what is unfinished",
 * per key or overall. (`created_at` keeps its b-tree: a BRIN index would cost nothing per row
 * version, but row versions fill the space vacuum frees in older pages, so block ranges stop
 * following creation time and a time-range report reads most of the table.)
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function omniscrape.key_slots(keys uuid[], except_jobs uuid[], stale_after_seconds double precision)
    returns table (id uuid, concurrency_limit integer, processing bigint)
    language plpgsql volatile
    as $$
    begin
      perform pg_advisory_xact_lock(hashtextextended(k::text, 7341))
         from (select distinct k from unnest(keys) k order by k) ordered;
      return query
        select a.id, a.concurrency_limit,
               (select count(*) from omniscrape.scrape_jobs j
                 where j.api_key_id = a.id and j.status = 'processing' and j.id <> all(except_jobs)
                   and (j.kind = 'sync' or coalesce(j.heartbeat_at, j.updated_at) > now() - make_interval(secs => stale_after_seconds)))
          from omniscrape.api_keys a
         where a.id = any(keys);
    end
    $$`.execute(db);

  const s = db.schema.withSchema('omniscrape');
  await s.dropIndex('scrape_jobs_unfinished_idx').ifExists().execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  const s = db.schema.withSchema('omniscrape');
  await s
    .createIndex('scrape_jobs_unfinished_idx')
    .on('scrape_jobs')
    .columns(['status', 'updated_at'])
    .where(sql.ref('status'), 'in', ['queued', 'processing'])
    .execute();
  await sql`drop function if exists omniscrape.key_slots(uuid[], uuid[], double precision)`.execute(db);
}
