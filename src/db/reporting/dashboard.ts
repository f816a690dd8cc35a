// The dashboard's figures, read from the reporting views (schema `omniscrape_reporting`, migrations
// 0010 and 0014) and nothing else, so the page shows what an analyst's SQL would. Each statement reads at
// most the history rows of its range (or the unfinished jobs, or the last 24 hours for the host
// view), aggregates in Postgres, and returns a bounded number of rows. Counts are cast to int and
// sums to text so the answer is the same whichever pool (and type parsers) runs them.
import { sql, type Kysely } from 'kysely';

export interface TimeRange {
  from: Date;
  to: Date;
}

export interface JobsPerBucket {
  bucket: Date;
  status: string;
  jobs: number;
}

/**
 * Jobs created per bucket (aligned to the UTC epoch) and by their status now; empty buckets are
 * absent. date_part, not extract: it computes in double precision rather than numeric, for every
 * row of the range.
 */
export async function readJobsPerBucket<DB>(
  db: Kysely<DB>,
  range: TimeRange,
  bucketSeconds: number,
): Promise<JobsPerBucket[]> {
  const { rows } = await sql<JobsPerBucket>`
    select to_timestamp(floor(date_part('epoch', created_at) / ${bucketSeconds}) * ${bucketSeconds}) as bucket,
           status, count(*)::int as jobs
      from omniscrape_reporting.job_history
     where created_at >= ${range.from} and created_at < ${range.to}
     group by 1, 2
     order by 1, 2`.execute(db);
  return rows;
}

/** p50, p95 and p99, in ms; null where no job of the range has the figure. */
export type Percentiles = [number | null, number | null, number | null] | null;

export interface Latency {
  queue_ms: Percentiles;
  run_ms: Percentiles;
}

/** Scrapes of the range by the engine that produced their outcome (job_history's `engine`). */
export interface EngineCounts {
  /** Rendered in headless Chromium (`engine = 'browser'`). */
  browser: number;
  /** Fetched by the HTTP engine. */
  http: number;
}

/**
 * Submit→start (`queue_ms`) and start→finish (`run_ms`) percentiles of the jobs created in the
 * range, and how many of them each engine scraped: one statement, since both read the same rows.
 */
export async function readLatencyAndEngines<DB>(
  db: Kysely<DB>,
  range: TimeRange,
): Promise<{ latency: Latency; engines: EngineCounts }> {
  const { rows } = await sql<Latency & EngineCounts>`
    select percentile_cont(array[0.5, 0.95, 0.99]) within group (order by queue_ms) as queue_ms,
           percentile_cont(array[0.5, 0.95, 0.99]) within group (order by run_ms) as run_ms,
           count(*) filter (where engine = 'browser')::int as browser,
           count(*) filter (where engine = 'http')::int as http
      from omniscrape_reporting.job_history
     where created_at >= ${range.from} and created_at < ${range.to}`.execute(db);
  const row = rows[0];
  return {
    latency: { queue_ms: row?.queue_ms ?? null, run_ms: row?.run_ms ?? null },
    engines: { browser: row?.browser ?? 0, http: row?.http ?? 0 },
  };
}

export interface QueueDepth {
  queued: number;
  processing: number;
}

/**
 * Jobs waiting and running now, whenever they were created. One count per status, so each is
 * answered by that status's partial index (the unfinished jobs only), never by a scan of the history.
 */
export async function readQueueDepth<DB>(db: Kysely<DB>): Promise<QueueDepth> {
  const { rows } = await sql<QueueDepth>`
    select (select count(*) from omniscrape_reporting.job_history where status = 'queued')::int as queued,
           (select count(*) from omniscrape_reporting.job_history where status = 'processing')::int as processing`.execute(
    db,
  );
  return rows[0] ?? { queued: 0, processing: 0 };
}

export interface HostRow {
  host: string;
  jobs: number;
  success_rate: number | null;
  p95_run_ms: number | null;
  top_error_code: string | null;
  last_failure_at: Date | null;
}

/** The hosts listed on each side (slowest, most failing). */
export const HOSTS_LISTED = 10;

/**
 * The slowest hosts (by p95 run time) and the most failing (lowest success rate, the busier
 * first) of the last 24 hours, from one read of the host view.
 */
export async function readHostHealth<DB>(
  db: Kysely<DB>,
): Promise<{ slowest: HostRow[]; failing: HostRow[] }> {
  const { rows } = await sql<HostRow & { list: 'slowest' | 'failing' }>`
    with hosts as materialized (
      select host, jobs::int as jobs, success_rate::float8 as success_rate,
             p95_run_ms::float8 as p95_run_ms, top_error_code, last_failure_at
        from omniscrape_reporting.host_health
    )
    (select 'slowest' as list, * from hosts where p95_run_ms is not null
      order by p95_run_ms desc, host limit ${HOSTS_LISTED})
    union all
    (select 'failing' as list, * from hosts where success_rate < 1
      order by success_rate, jobs desc, host limit ${HOSTS_LISTED})`.execute(db);
  const listed = (list: string) =>
    rows.filter((r) => r.list === list).map(({ list: _list, ...host }) => host);
  return { slowest: listed('slowest'), failing: listed('failing') };
}

export interface KeyUsage {
  api_key_name: string;
  jobs: number;
  completed: number;
  failed: number;
  timed_out: number;
  cancelled: number;
  /** numeric, exact: a decimal string. */
  charged: string;
}

/** The keys listed in the usage table, the busiest first. */
export const KEYS_LISTED = 50;

/** Usage per key over the UTC days `fromDay`..`toDay` (YYYY-MM-DD, both included). */
export async function readUsagePerKey<DB>(
  db: Kysely<DB>,
  fromDay: string,
  toDay: string,
): Promise<KeyUsage[]> {
  const { rows } = await sql<KeyUsage>`
    select api_key_name, sum(jobs)::int as jobs, sum(completed)::int as completed,
           sum(failed)::int as failed, sum(timed_out)::int as timed_out,
           sum(cancelled)::int as cancelled, sum(charged)::text as charged
      from omniscrape_reporting.daily_usage
     where day >= ${fromDay}::date and day <= ${toDay}::date
     group by api_key_name
     order by 2 desc, 1
     limit ${KEYS_LISTED}`.execute(db);
  return rows;
}

export interface FailureRow {
  job_id: string;
  api_key_name: string;
  host: string;
  url: string;
  status: string;
  status_code: number | null;
  error_code: string | null;
  created_at: Date;
  finished_at: Date | null;
}

export const FAILURES_LISTED = 20;

/** The latest failed and timed-out jobs created in the range, newest first. */
export async function readLatestFailures<DB>(db: Kysely<DB>, range: TimeRange): Promise<FailureRow[]> {
  const { rows } = await sql<FailureRow>`
    select job_id, api_key_name, host, url, status, status_code, error_code, created_at, finished_at
      from omniscrape_reporting.job_history
     where status in ('failed', 'timed_out')
       and created_at >= ${range.from} and created_at < ${range.to}
     order by created_at desc, job_id
     limit ${FAILURES_LISTED}`.execute(db);
  return rows;
}
