import { Kysely, sql } from 'kysely';

/**
 * Sync scrapes hold their key's concurrency slot by a lease, as async jobs do by their heartbeat.
 *
 * Before, `key_slots` counted every `processing` sync row, with no staleness check: a sync scrape
 * whose API process died, or whose final UPDATE failed, kept one of its key's slots until the
 * maintenance reaper ended the row — minutes later (a 5-minute schedule, for rows older than their
 * timeout + 60 s). Now the API process renews the lease of its running sync scrapes in
 * `heartbeat_at` (the column async jobs already use, set when the row is inserted; rows from
 * before have only `updated_at`), and a sync row stops counting once its lease is
 * `sync_stale_after_seconds` old. The function takes that as a fourth argument.
 *
 * The 3-argument version stays, for processes of the previous release still running during a
 * rolling upgrade: it counts their sync scrapes as before (they renew no lease, so for them the
 * lease is as long as any scrape can last). A later migration drops it.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function omniscrape.key_slots(keys uuid[], except_jobs uuid[], stale_after_seconds double precision, sync_stale_after_seconds double precision)
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
                   and coalesce(j.heartbeat_at, j.updated_at) > now() - make_interval(secs =>
                         case when j.kind = 'sync' then sync_stale_after_seconds else stale_after_seconds end))
          from omniscrape.api_keys a
         where a.id = any(keys);
    end
    $$`.execute(db);
  await sql`
    create or replace function omniscrape.key_slots(keys uuid[], except_jobs uuid[], stale_after_seconds double precision)
    returns table (id uuid, concurrency_limit integer, processing bigint)
    language sql volatile
    as $$ select * from omniscrape.key_slots(keys, except_jobs, stale_after_seconds, 1e9) $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function if exists omniscrape.key_slots(uuid[], uuid[], double precision, double precision)`.execute(
    db,
  );
  await sql`
    create or replace function omniscrape.key_slots(keys uuid[], except_jobs uuid[], stale_after_seconds double precision)
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
}
