import { Kysely, sql } from 'kysely';
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
 * `omniscrape_reporting.job_history` gains it as its last column, after 0012's `request_id`.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table omniscrape.scrape_jobs add column engine text`.execute(db);
  await sql`alter table omniscrape.scrape_jobs add constraint scrape_jobs_engine_check
              check (engine in ('http', 'browser')) not valid`.execute(db);
  for (const name of Object.keys(deferred))
    await sql`insert into omniscrape.deferred_steps (name) values (${name})`.execute(db);
  await createJobHistory(db, sql`, j.request_id, j.engine`);
}

/** The view is made again as 0012 left it, with the SELECT grants it had, and the column dropped. */
export async function down(db: Kysely<any>): Promise<void> {
  const { rows: readers } = await sql<{ grantee: string }>`
    select distinct grantee from information_schema.table_privileges
     where table_schema = 'omniscrape_reporting' and table_name = 'job_history'
       and privilege_type = 'SELECT' and grantee <> current_user`.execute(db);
  await sql`drop view omniscrape_reporting.job_history`.execute(db);
  await createJobHistory(db, sql`, j.request_id`);
  for (const { grantee } of readers)
    await sql`grant select on omniscrape_reporting.job_history to ${sql.id(grantee)}`.execute(db);
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
