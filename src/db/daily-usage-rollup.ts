import { sql } from 'kysely';
import type { Db } from './schema';

// The daily usage roll-up (migration 0010): usage per UTC day and key copied from the history
// (omniscrape.daily_usage_live) into omniscrape.daily_usage_rollup, before the retention may delete
// the rows it was computed from. omniscrape_reporting.daily_usage reads the roll-up for every day up
// to the last rolled-up one (omniscrape.daily_usage_rolled_up), and the history for the days after.

/**
 * A day is rolled up once it ended this long ago. Its rows are written until it ends, and an API
 * host's clock (which sets created_at) may run a little behind Postgres's; an hour is far beyond
 * either, so no row of a rolled-up day appears after its roll-up.
 */
export const ROLL_UP_AFTER_SECONDS = 3600;

/**
 * The days the next roll-up computes, oldest first, as `YYYY-MM-DD`: the days after the last
 * rolled-up one (from the history's first day) that ended at least ROLL_UP_AFTER_SECONDS ago, and
 * the rolled-up days, history still kept, whose count of unfinished (queued, processing) jobs is no
 * longer what their roll-up found: a job of theirs ended since. A day whose unfinished jobs never
 * end (stuck) is not computed again and again; its figures count them in `jobs` only.
 */
export async function daysToRollUp(db: Db): Promise<string[]> {
  const { rows } = await sql<{ day: string }>`
    with last as (
      select (select through from omniscrape.daily_usage_rolled_up) as day
    ), new_days as (
      select d::date as day
        from last, generate_series(
               coalesce(last.day + 1, (select (min(created_at) at time zone 'UTC')::date from omniscrape.scrape_jobs))::timestamp,
               ((now() - make_interval(secs => ${ROLL_UP_AFTER_SECONDS})) at time zone 'UTC')::date::timestamp - interval '1 day',
               interval '1 day') as d
    ), unfinished_then as (
      select day, sum(unfinished) as n
        from omniscrape.daily_usage_rollup
       where history_deleted_at is null and unfinished > 0
       group by day
    ), unfinished_now as (
      -- Literal statuses: each finds its rows by its partial index.
      select (created_at at time zone 'UTC')::date as day, count(*) as n
        from omniscrape.scrape_jobs
       where status = 'queued' or status = 'processing'
       group by 1
    ), changed_days as (
      select coalesce(t.day, n.day) as day
        from unfinished_then t
        full join unfinished_now n on n.day = t.day
       cross join last
       where coalesce(t.n, 0) <> coalesce(n.n, 0) and coalesce(t.day, n.day) <= last.day
    )
    select day::text as day from new_days
     union
    select day::text from changed_days
     order by day`.execute(db);
  return rows.map((r) => r.day);
}

/**
 * Computes a day's usage per key from the history and writes it to the roll-up, and records the
 * day as rolled up (the last rolled-up day moves to it if it is later), in one short transaction. A
 * (day, key) whose history the retention deleted keeps its figures. Days are rolled up in order
 * (daysToRollUp), so every day up to the last rolled-up one is. Returns how many keys' rows it wrote.
 */
export async function rollUpDay(db: Db, day: string): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const written = await rollUpDayRows(trx, day);
    await sql`insert into omniscrape.daily_usage_rolled_up as r (through) values (${day}::date)
                  on conflict (one_row) do update set through = greatest(r.through, excluded.through)`.execute(
      trx,
    );
    return written;
  });
}

async function rollUpDayRows(db: Db, day: string): Promise<number> {
  const result = await sql`
    insert into omniscrape.daily_usage_rollup as r
           (day, api_key_id, jobs, completed, failed, timed_out, cancelled, unfinished, charged, p50_run_ms,
            p95_run_ms, rolled_up_at)
    select day, api_key_id, jobs, completed, failed, timed_out, cancelled, unfinished, charged, p50_run_ms,
           p95_run_ms, now()
      from omniscrape.daily_usage_live
     where day = ${day}::date
        on conflict (day, api_key_id) do update
       set jobs = excluded.jobs, completed = excluded.completed, failed = excluded.failed,
           timed_out = excluded.timed_out, cancelled = excluded.cancelled, unfinished = excluded.unfinished,
           charged = excluded.charged, p50_run_ms = excluded.p50_run_ms, p95_run_ms = excluded.p95_run_ms,
           rolled_up_at = excluded.rolled_up_at
     where r.history_deleted_at is null`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
