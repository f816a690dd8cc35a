import { Kysely, sql, type RawBuilder } from 'kysely';
import { msBetween } from './0010_reporting';
import { createJobHistory } from './0012_request_ids';

/**
 * `scrape_jobs.engine`: which engine produced the job's outcome, `http` or `browser` (a rendered
 * page); NULL while the job has not ended, for a job that ended without a scrape (cancelled, lost
 * workers, abandoned), and for jobs that ended before this migration (or were ended by a process of
 * the previous release during a rolling upgrade). Added without a default: catalog only.
 *
 * Its check is added NOT VALID (no scan under the ADD CONSTRAINT's lock; new rows are checked from
 * then on) and validated after the migration commits, a scan that blocks neither reads nor writes.
 *
 * `omniscrape_reporting.job_history` gains it as its last column, after 0012's `request_id`, and
 * `host_health` gains `rendered`, the host's jobs of the last 24 hours rendered in the browser, as
 * its last: `create or replace view` may only append columns, and keeps the views' grants.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table omniscrape.scrape_jobs add column engine text`.execute(db);
  await sql`alter table omniscrape.scrape_jobs add constraint scrape_jobs_engine_check
              check (engine in ('http', 'browser')) not valid`.execute(db);
  for (const name of Object.keys(deferred))
    await sql`insert into omniscrape.deferred_steps (name) values (${name})`.execute(db);
  await createJobHistory(db, sql`, j.request_id, j.engine`);
  await createHostHealth(db, sql`, count(*) filter (where j.engine = 'browser') as rendered`);
}

/**
 * The views are made again as 0012 left them (a view cannot lose a column in place), with the
 * SELECT grants job_history had (`omniscrape reporting grant` grants every view alike), and the
 * column dropped.
 */
export async function down(db: Kysely<any>): Promise<void> {
  const { rows: readers } = await sql<{ grantee: string }>`
    select distinct grantee from information_schema.table_privileges
     where table_schema = 'omniscrape_reporting' and table_name = 'job_history'
       and privilege_type = 'SELECT' and grantee <> current_user`.execute(db);
  for (const view of ['job_history', 'host_health'])
    await sql`drop view ${sql.id('omniscrape_reporting', view)}`.execute(db);
  await createJobHistory(db, sql`, j.request_id`);
  await createHostHealth(db, sql``);
  for (const { grantee } of readers)
    for (const view of ['job_history', 'host_health'])
      await sql`grant select on ${sql.id('omniscrape_reporting', view)} to ${sql.id(grantee)}`.execute(db);
  for (const name of Object.keys(deferred))
    await sql`delete from omniscrape.deferred_steps where name = ${name}`.execute(db);
  await sql`alter table omniscrape.scrape_jobs drop column engine`.execute(db);
}

/** What this migration leaves to run after it commits. */
export const deferred: Record<string, (db: Kysely<any>) => Promise<void>> = {
  '0014_job_engines: validate scrape_jobs_engine_check': validateEngineCheck,
};

/** Validating an already valid constraint does nothing, so an interrupted run simply runs again. */
async function validateEngineCheck(db: Kysely<any>): Promise<void> {
  await sql`alter table omniscrape.scrape_jobs validate constraint scrape_jobs_engine_check`.execute(db);
}

/** host_health as migration 0010 defined it, with `extra` columns appended. */
async function createHostHealth(db: Kysely<any>, extra: RawBuilder<unknown>): Promise<void> {
  await sql`
    create or replace view omniscrape_reporting.host_health as
    select j.host,
           count(*) as jobs,
           (count(*) filter (where j.status = 'completed'))::double precision
             / nullif(count(*) filter (where j.status in ('completed', 'failed', 'timed_out')), 0) as success_rate,
           percentile_cont(0.95) within group (order by ${msBetween('j.started_at', 'j.finished_at')}) as p95_run_ms,
           mode() within group (order by j.error_code) filter (where j.status in ('failed', 'timed_out')) as top_error_code,
           max(j.finished_at) filter (where j.status in ('failed', 'timed_out')) as last_failure_at
           ${extra}
      from omniscrape.scrape_jobs j
     where j.created_at > now() - interval '24 hours'
     group by j.host`.execute(db);
}
