import { Kysely, sql } from 'kysely';

/**
 * The reporting interface: schema `omniscrape_reporting` with three views over the history, the
 * daily usage roll-up they read for days whose history may be deleted, and `scrape_jobs.batch_id`.
 * docs/reporting.md documents every column; a later migration may add columns to these views, never
 * rename or drop one without a new view name.
 *
 * The views are plain (not `security_invoker`) and call only built-in functions, so they read the
 * history with their owner's rights: a role granted SELECT on them (`omniscrape reporting grant`)
 * needs, and gets, nothing in schema `omniscrape` — no key digests, no results, no pg-boss tables.
 *
 * `batch_id` is added without a default, which Postgres does without rewriting the table; the batch
 * insert writes it from now on. Not indexed: it is read only with its job. Two steps are left to run
 * after this migration commits (`deferred`, run by migrateToLatest outside any transaction): done in
 * here, they would hold the ADD COLUMN's exclusive lock on the history, or a write lock, until the
 * whole migration committed.
 * - Existing rows get their batch_id from `batch_jobs`, a few thousand rows per short transaction.
 *   A batch that a process of the previous release writes after that (during a rolling upgrade)
 *   keeps a NULL batch_id.
 * - `scrape_jobs_key_created_idx` (api_key_id, created_at) is rebuilt with `status` as an included
 *   column, CONCURRENTLY, under the same name. No index is added: a status change is not a HOT
 *   update (`status` is in the partial indexes' predicates), so it already writes an entry in this
 *   index, just a few bytes wider now; in exchange, a key's jobs counted by status over days
 *   (job_history's typical question) are counted from the index alone, without reading the table,
 *   wherever vacuum has marked the pages all-visible. Write-path cost (`npm run bench:history`)
 *   and query plans: docs/performance.md.
 * Every other typical reporting query is served by the indexes the history has: a key's usage per
 * day by `scrape_jobs_key_created_idx`, the last 24 hours by host by `scrape_jobs_created_idx`.
 *
 * Autovacuum visits the history after 2 % of its rows changed rather than Postgres's 20 %: on a
 * large history the default leaves days of pages unvacuumed (each job leaves two dead row versions,
 * the retention one more), and an index-only scan reads every row of such a page from the table.
 * It also makes the space of deleted rows reusable sooner. A storage setting: no rewrite, and a
 * lock that blocks no reads or writes.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table omniscrape.scrape_jobs add column batch_id uuid`.execute(db);
  await sql`alter table omniscrape.scrape_jobs
              set (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02)`.execute(
    db,
  );
  await recordDeferredSteps(db);
  await createDailyUsageRollup(db);
  await sql`create schema omniscrape_reporting`.execute(db);
  await sql`comment on schema omniscrape_reporting is 'omniscrape reporting interface: stable views, documented in docs/reporting.md'`.execute(
    db,
  );
  await createJobHistory(db);
  await createDailyUsage(db);
  await createHostHealth(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop schema omniscrape_reporting cascade`.execute(db);
  await sql`drop view omniscrape.daily_usage_live`.execute(db);
  await sql`drop table omniscrape.daily_usage_rolled_up`.execute(db);
  await sql`drop table omniscrape.daily_usage_rollup`.execute(db);
  await sql`drop table omniscrape.deferred_steps`.execute(db);
  // The deferred rebuild may have run: the index is made as migration 0001 made it.
  await sql`drop index if exists omniscrape.scrape_jobs_key_created_status_idx`.execute(db);
  await sql`drop index if exists omniscrape.scrape_jobs_key_created_idx`.execute(db);
  await sql`create index scrape_jobs_key_created_idx on omniscrape.scrape_jobs (api_key_id, created_at)`.execute(
    db,
  );
  await sql`alter table omniscrape.scrape_jobs
              reset (autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor)`.execute(db);
  await sql`alter table omniscrape.scrape_jobs drop column batch_id`.execute(db);
}

/** Milliseconds from one timestamp to another; NULL when either is, never negative (0012 reuses it). */
export function msBetween(from: string, to: string) {
  // date_part, not extract: extract's numeric arithmetic costs several times more per row. Never
  // negative: created_at and a sync scrape's started_at come from an API host's clock, the other
  // times from Postgres's, and clocks a few milliseconds apart must not make a duration negative.
  return sql.raw(
    `(case when ${to} >= ${from} then date_part('epoch', ${to} - ${from}) * 1000 when ${to} < ${from} then 0 end)`,
  );
}
const RUN_MS = msBetween('j.started_at', 'j.finished_at');

/** The statuses a job ends in, and those of them that count as a failure of its target. */
const ENDED = sql.raw(`('completed', 'failed', 'timed_out', 'cancelled')`);
const FAILED = sql.raw(`('failed', 'timed_out')`);

/** What this migration leaves to run after it commits, each idempotent and resumable. */
export const deferred: Record<string, (db: Kysely<any>) => Promise<void>> = {
  '0010_reporting: fill scrape_jobs.batch_id': fillBatchIds,
  '0010_reporting: scrape_jobs_key_created_idx includes status': includeStatusInKeyCreatedIndex,
};

/**
 * `deferred_steps`: the steps migrations leave to run after they commit, pending until `done_at`
 * is set (src/admin/migrate.ts runs them).
 */
async function recordDeferredSteps(db: Kysely<any>): Promise<void> {
  await sql`create table omniscrape.deferred_steps (name text primary key, done_at timestamptz)`.execute(db);
  for (const name of Object.keys(deferred))
    await sql`insert into omniscrape.deferred_steps (name) values (${name})`.execute(db);
}

/** Rows of `batch_jobs` per transaction of the batch_id backfill. */
const FILL_BATCH_IDS_ROWS = 5000;

/** Fills batch_id of the batches' jobs, walking `batch_jobs` in primary-key order. */
async function fillBatchIds(db: Kysely<any>): Promise<void> {
  let after: { batch_id: string; position: number } = {
    batch_id: '00000000-0000-0000-0000-000000000000',
    position: -1,
  };
  for (;;) {
    const { rows } = await sql<typeof after>`
      with next as (
        select batch_id, position, job_id from omniscrape.batch_jobs
         where (batch_id, position) > (${after.batch_id}::uuid, ${after.position}::integer)
         order by batch_id, position
         limit ${FILL_BATCH_IDS_ROWS}
      ), filled as (
        update omniscrape.scrape_jobs j set batch_id = n.batch_id
          from next n
         where j.id = n.job_id and j.batch_id is null
      )
      select batch_id, position from next order by batch_id desc, position desc limit 1`.execute(db);
    if (!rows[0]) return;
    after = rows[0];
  }
}

/**
 * Rebuilds the index CONCURRENTLY (writes go on meanwhile) under a temporary name, then swaps it in.
 * Resumes wherever an interrupted run stopped: an invalid half-built index is dropped and built again.
 */
async function includeStatusInKeyCreatedIndex(db: Kysely<any>): Promise<void> {
  const state = async (name: string) =>
    (
      await sql<{ valid: boolean; covering: boolean }>`
        select i.indisvalid as valid, i.indnatts > i.indnkeyatts as covering
          from pg_index i where i.indexrelid = to_regclass(${`omniscrape.${name}`})`.execute(db)
    ).rows[0];
  if ((await state('scrape_jobs_key_created_idx'))?.covering) return;
  const built = await state('scrape_jobs_key_created_status_idx');
  if (built && !built.valid)
    await sql`drop index concurrently omniscrape.scrape_jobs_key_created_status_idx`.execute(db);
  if (!built?.valid)
    await sql`create index concurrently scrape_jobs_key_created_status_idx
                on omniscrape.scrape_jobs (api_key_id, created_at) include (status)`.execute(db);
  await sql`drop index concurrently if exists omniscrape.scrape_jobs_key_created_idx`.execute(db);
  await sql`alter index omniscrape.scrape_jobs_key_created_status_idx rename to scrape_jobs_key_created_idx`.execute(
    db,
  );
}

/**
 * Daily usage per UTC day (of `created_at`) and key, written by the history retention duty
 * (src/maintenance/history-retention.ts) before any of the day's rows may be deleted, so billing
 * figures outlive the raw history. `unfinished` counts the day's jobs still queued or processing
 * at the roll-up: such a day is rolled up again once that count changes. `history_deleted_at`:
 * when the retention deleted the (day, key)'s history rows; from then on the row is never rolled
 * up again (it would be counted from nothing). `daily_usage_rolled_up.through`: the last day rolled
 * up, so days without a job count as rolled up too.
 */
async function createDailyUsageRollup(db: Kysely<any>): Promise<void> {
  await sql`
    create table omniscrape.daily_usage_rollup (
      day date not null,
      api_key_id uuid not null references omniscrape.api_keys (id),
      jobs bigint not null,
      completed bigint not null,
      failed bigint not null,
      timed_out bigint not null,
      cancelled bigint not null,
      unfinished bigint not null,
      charged numeric not null,
      p50_run_ms double precision,
      p95_run_ms double precision,
      rolled_up_at timestamptz not null default now(),
      history_deleted_at timestamptz,
      primary key (day, api_key_id)
    )`.execute(db);
  // The last day rolled up: the days up to it, with jobs or none, are in the roll-up.
  await sql`
    create table omniscrape.daily_usage_rolled_up (
      through date not null,
      one_row boolean primary key default true check (one_row)
    )`.execute(db);
  // One key over a range of days (daily_usage's rolled-up part).
  await sql`create index daily_usage_rollup_key_day_idx on omniscrape.daily_usage_rollup (api_key_id, day)`.execute(
    db,
  );
  // The roll-ups whose history is still there: what the retention and the re-rolls look at.
  await sql`create index daily_usage_rollup_history_kept_idx on omniscrape.daily_usage_rollup (day) where history_deleted_at is null`.execute(
    db,
  );
}

/** One row per job. The key is a LEFT JOIN (every job has one) so a query not naming it skips it. */
async function createJobHistory(db: Kysely<any>): Promise<void> {
  await sql`
    create view omniscrape_reporting.job_history as
    select j.id as job_id,
           k.name as api_key_name,
           j.batch_id,
           j.kind,
           j.url,
           j.host,
           j.status,
           j.target_status_code as status_code,
           j.error_code,
           j.created_at,
           j.started_at,
           j.finished_at,
           ${msBetween('j.created_at', 'j.started_at')} as queue_ms,
           ${RUN_MS} as run_ms,
           j.attempts,
           j.charged,
           j.result_bytes,
           case when j.result_expires_at is not null then j.result_expires_at <= now() end as result_expired
      from omniscrape.scrape_jobs j
      left join omniscrape.api_keys k on k.id = j.api_key_id`.execute(db);
}

/**
 * Usage per UTC day and key computed from the history (internal: with the key's id, and
 * `unfinished`). One aggregate per day, over that day's range of `scrape_jobs_created_idx`, so a
 * filter on the day skips the other days' rows; a filter on the key (a grouping column) reaches
 * inside it. The roll-up copies its rows; daily_usage shows them for the days not rolled up yet.
 */
async function createDailyUsageLive(db: Kysely<any>): Promise<void> {
  await sql`
    create view omniscrape.daily_usage_live as
    select d.t::date as day, u.api_key_id, u.api_key_name, u.jobs, u.completed, u.failed, u.timed_out,
           u.cancelled, u.unfinished, u.charged, u.p50_run_ms, u.p95_run_ms
      from generate_series(
             (select min(created_at) at time zone 'UTC' from omniscrape.scrape_jobs)::date::timestamp,
             (now() at time zone 'UTC')::date::timestamp,
             interval '1 day') as d(t)
     cross join lateral (
       select k.id as api_key_id,
              k.name as api_key_name,
              count(*) as jobs,
              count(*) filter (where j.status = 'completed') as completed,
              count(*) filter (where j.status = 'failed') as failed,
              count(*) filter (where j.status = 'timed_out') as timed_out,
              count(*) filter (where j.status = 'cancelled') as cancelled,
              count(*) filter (where j.status not in ${ENDED}) as unfinished,
              sum(j.charged) as charged,
              percentile_cont(0.5) within group (order by ${RUN_MS}) as p50_run_ms,
              percentile_cont(0.95) within group (order by ${RUN_MS}) as p95_run_ms
         from omniscrape.scrape_jobs j
         join omniscrape.api_keys k on k.id = j.api_key_id
        where j.created_at >= d.t at time zone 'UTC'
          and j.created_at < (d.t + interval '1 day') at time zone 'UTC'
        group by k.id, k.name
     ) u`.execute(db);
}

/**
 * Rolled-up days from the roll-up, the days after the last rolled-up one from the history: the
 * same columns and figures either way. The roll-up holds only days up to that one, so its part
 * needs no day filter.
 */
async function createDailyUsage(db: Kysely<any>): Promise<void> {
  await createDailyUsageLive(db);
  await sql`
    create view omniscrape_reporting.daily_usage as
    select r.day, k.name as api_key_name, r.jobs, r.completed, r.failed, r.timed_out, r.cancelled,
           r.charged, r.p50_run_ms, r.p95_run_ms
      from omniscrape.daily_usage_rollup r
      join omniscrape.api_keys k on k.id = r.api_key_id
    union all
    select l.day, l.api_key_name, l.jobs, l.completed, l.failed, l.timed_out, l.cancelled,
           l.charged, l.p50_run_ms, l.p95_run_ms
      from omniscrape.daily_usage_live l
     where l.day > coalesce((select through from omniscrape.daily_usage_rolled_up), '-infinity'::date)`.execute(
    db,
  );
}

/**
 * Per host over the last 24 hours. The success rate is over jobs that ran to an outcome
 * (completed, failed, timed_out): a cancelled job never reached its host.
 */
async function createHostHealth(db: Kysely<any>): Promise<void> {
  await sql`
    create view omniscrape_reporting.host_health as
    select j.host,
           count(*) as jobs,
           (count(*) filter (where j.status = 'completed'))::double precision
             / nullif(count(*) filter (where j.status in ('completed', 'failed', 'timed_out')), 0) as success_rate,
           percentile_cont(0.95) within group (order by ${RUN_MS}) as p95_run_ms,
           mode() within group (order by j.error_code) filter (where j.status in ${FAILED}) as top_error_code,
           max(j.finished_at) filter (where j.status in ${FAILED}) as last_failure_at
      from omniscrape.scrape_jobs j
     where j.created_at > now() - interval '24 hours'
     group by j.host`.execute(db);
}
