import { Kysely, sql, type RawBuilder } from 'kysely';
import { msBetween } from './0010_reporting';

/**
 * `scrape_jobs.request_id`: the `X-Request-Id` of the request that submitted the job (every job of
 * a batch shares its request's), so a complaint quoting it finds the job, and the worker's log
 * lines for the job, which carry it too. Added without a default, which Postgres does without
 * rewriting the table; NULL for jobs submitted before this migration (and by a process of the
 * previous release during a rolling upgrade). Not indexed: looked up by an operator now and then,
 * with a time range (`job_history`'s `created_at`), never on a request's path.
 *
 * `omniscrape_reporting.job_history` gains it as its last column: `create or replace view` may
 * only append columns, which keeps the view's grants and the documented columns where they were.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table omniscrape.scrape_jobs add column request_id text`.execute(db);
  await createJobHistory(db, sql`, j.request_id`);
}

/**
 * The view is made again as migration 0010 made it (a view cannot lose a column in place), with
 * the SELECT grants it had, and the column dropped.
 */
export async function down(db: Kysely<any>): Promise<void> {
  const { rows: readers } = await sql<{ grantee: string }>`
    select distinct grantee from information_schema.table_privileges
     where table_schema = 'omniscrape_reporting' and table_name = 'job_history'
       and privilege_type = 'SELECT' and grantee <> current_user`.execute(db);
  await sql`drop view omniscrape_reporting.job_history`.execute(db);
  await createJobHistory(db, sql``);
  for (const { grantee } of readers)
    await sql`grant select on omniscrape_reporting.job_history to ${sql.id(grantee)}`.execute(db);
  await sql`alter table omniscrape.scrape_jobs drop column request_id`.execute(db);
}

/** job_history as migration 0010 defined it, with `extra` columns appended (0014 appends one more). */
export async function createJobHistory(db: Kysely<any>, extra: RawBuilder<unknown>): Promise<void> {
  await sql`
    create or replace view omniscrape_reporting.job_history as
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
           ${msBetween('j.started_at', 'j.finished_at')} as run_ms,
           j.attempts,
           j.charged,
           j.result_bytes,
           case when j.result_expires_at is not null then j.result_expires_at <= now() end as result_expired
           ${extra}
      from omniscrape.scrape_jobs j
      left join omniscrape.api_keys k on k.id = j.api_key_id`.execute(db);
}
