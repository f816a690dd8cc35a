import pg from 'pg';

/**
 * TEMPORARY, test-only: the reporting views of the shared spec (issue 12), for testing the report
 * command before migration 0010 (branch reporting-core) lands. Created only where the real views
 * are missing; removed once 0010 is merged. Not the views' definition: that is the migration's.
 */
export async function ensureReportingViews(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query(
      `select to_regclass('omniscrape_reporting.daily_usage') is not null as present`,
    );
    if (rows[0].present) return;
    await client.query(STAND_IN_SQL);
  } finally {
    await client.end();
  }
}

const STAND_IN_SQL = `
create schema omniscrape_reporting;
create view omniscrape_reporting.job_history as
select j.id as job_id, k.name as api_key_name, bj.batch_id, j.kind, j.url, j.host, j.status,
       j.target_status_code as status_code, j.error_code, j.created_at, j.started_at, j.finished_at,
       (extract(epoch from j.started_at - j.created_at) * 1000)::float8 as queue_ms,
       (extract(epoch from j.finished_at - j.started_at) * 1000)::float8 as run_ms,
       j.attempts, j.charged, j.result_bytes,
       case when j.result_expires_at is null then null else j.result_expires_at <= now() end as result_expired
  from omniscrape.scrape_jobs j
  join omniscrape.api_keys k on k.id = j.api_key_id
  left join omniscrape.batch_jobs bj on bj.job_id = j.id;
create view omniscrape_reporting.daily_usage as
select (created_at at time zone 'UTC')::date as day, api_key_name, count(*) as jobs,
       count(*) filter (where status = 'completed') as completed,
       count(*) filter (where status = 'failed') as failed,
       count(*) filter (where status = 'timed_out') as timed_out,
       count(*) filter (where status = 'cancelled') as cancelled,
       sum(charged) as charged,
       percentile_cont(0.5) within group (order by run_ms) as p50_run_ms,
       percentile_cont(0.95) within group (order by run_ms) as p95_run_ms
  from omniscrape_reporting.job_history
 group by 1, 2;
create view omniscrape_reporting.host_health as
select host, count(*) as jobs,
       (count(*) filter (where status = 'completed'))::float8
         / nullif(count(*) filter (where status in ('completed', 'failed', 'timed_out')), 0) as success_rate,
       percentile_cont(0.95) within group (order by run_ms) as p95_run_ms,
       mode() within group (order by error_code) as top_error_code,
       max(finished_at) filter (where status in ('failed', 'timed_out')) as last_failure_at
  from omniscrape_reporting.job_history
 where created_at > now() - interval '24 hours'
 group by host;
`;
