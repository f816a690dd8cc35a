import { rollUpDailyUsage } from '../src/maintenance/history-retention';
import { openStore } from '../src/db/pool';
/**
 * The reporting views' typical queries, as bench/reporting.ts times them at size and docs/reporting.md
 * shows them: one key over 7 days, one host and all hosts over 24 h, all keys for one day, one key
 * over 30 days. The seeded history names keys `key-01`… (key-01 the busiest) and hosts
 * `host-0000.example`… (host-0000 the busiest).
 */
export const REPORTING_QUERIES: { name: string; sql: string; params: unknown[] }[] = [
  {
    name: 'job_history: one key, last 7 days, newest 100',
    sql: `select * from omniscrape_reporting.job_history
           where api_key_name = $1 and created_at >= now() - interval '7 days'
           order by created_at desc limit 100`,
    params: ['key-01'],
  },
  {
    name: 'job_history: one key, last 7 days, jobs per status',
    sql: `select status, count(*) from omniscrape_reporting.job_history
           where api_key_name = $1 and created_at >= now() - interval '7 days' group by status`,
    params: ['key-01'],
  },
  {
    name: 'host_health: one host (last 24 h)',
    sql: `select * from omniscrape_reporting.host_health where host = $1`,
    params: ['host-0000.example'],
  },
  {
    name: 'host_health: the 20 most failing hosts (last 24 h)',
    sql: `select * from omniscrape_reporting.host_health order by success_rate asc, jobs desc limit 20`,
    params: [],
  },
  {
    name: 'daily_usage: all keys, one day (yesterday)',
    sql: `select * from omniscrape_reporting.daily_usage where day = (now() at time zone 'utc')::date - 1`,
    params: [],
  },
  {
    name: 'daily_usage: one key, last 30 days',
    sql: `select * from omniscrape_reporting.daily_usage
           where api_key_name = $1 and day >= (now() at time zone 'utc')::date - 30 order by day`,
    params: ['key-01'],
  },
];

/** The example questions of docs/reporting.md, answered over the seeded history. */
export const EXAMPLE_QUESTIONS: { question: string; sql: string }[] = [
  {
    question: 'Which hosts failed most this week?',
    sql: `select host,
       count(*) filter (where status in ('failed', 'timed_out')) as failures,
       count(*) as jobs,
       round(100.0 * count(*) filter (where status in ('failed', 'timed_out')) / count(*), 1) as failure_pct,
       mode() within group (order by error_code) filter (where status in ('failed', 'timed_out')) as top_error
  from omniscrape_reporting.job_history
 where created_at > now() - interval '7 days'
 group by host
 order by failures desc
 limit 5`,
  },
  {
    question: 'What did key key-03 spend per day this week?',
    sql: `select day, jobs, completed, failed + timed_out as failed, charged
  from omniscrape_reporting.daily_usage
 where api_key_name = 'key-03' and day > current_date - 7
 order by day`,
  },
  {
    question: 'p95 run time per host (the last 24 hours, slowest first, hosts with at least 100 jobs)',
    sql: `select host, jobs, round(p95_run_ms) as p95_ms, round(success_rate::numeric, 3) as success_rate, top_error_code
  from omniscrape_reporting.host_health
 where jobs >= 100
 order by p95_run_ms desc
 limit 5`,
  },
];

/** Rolls the seeded finished days up as the scheduled cleanup does. */
export async function rollUpSeededDays(url: string): Promise<number> {
  const store = openStore(url, { max: 1 });
  try {
    return await rollUpDailyUsage(store.db);
  } finally {
    await store.close();
  }
}
