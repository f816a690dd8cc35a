import type { Kysely } from 'kysely';
import {
  readHostHealth,
  readJobsPerBucket,
  readLatencyAndEngines,
  readLatestFailures,
  readQueueDepth,
  readUsagePerKey,
  type JobsPerBucket,
  type Percentiles,
} from '../db/reporting/dashboard';
import { JOB_STATUSES } from '../db/schema';
import type { DashboardRange } from './dashboard-range';

/** The chart's series: one count per bucket for every status, zero where no job was created. */
export interface JobsChart {
  /** Each bucket's start (ISO 8601, UTC). */
  buckets: string[];
  series: Record<string, number[]>;
}

function denseChart(rows: JobsPerBucket[], range: DashboardRange): JobsChart {
  const step = range.bucketSeconds * 1000;
  const starts: number[] = [];
  for (let t = Math.floor(range.from.getTime() / step) * step; t < range.to.getTime(); t += step)
    starts.push(t);
  const index = new Map(starts.map((t, i) => [t, i]));
  const series: Record<string, number[]> = Object.fromEntries(
    JOB_STATUSES.map((status) => [status, starts.map(() => 0)]),
  );
  for (const row of rows) {
    const i = index.get(new Date(row.bucket).getTime());
    const counts = series[row.status];
    if (i !== undefined && counts) counts[i] = row.jobs;
  }
  return { buckets: starts.map((t) => new Date(t).toISOString()), series };
}

const percentiles = (values: Percentiles) => ({
  p50: values?.[0] ?? null,
  p95: values?.[1] ?? null,
  p99: values?.[2] ?? null,
});

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * Every figure of the page for one range (GET /dashboard/data), read concurrently. `db` is the
 * handle the reporting reads go through (see dashboard-router.ts).
 */
export async function dashboardFigures<DB>(db: Kysely<DB>, range: DashboardRange) {
  const [perBucket, { latency, engines }, queueDepth, hosts, usage, failures] = await Promise.all([
    readJobsPerBucket(db, range, range.bucketSeconds),
    readLatencyAndEngines(db, range),
    readQueueDepth(db),
    readHostHealth(db),
    // The days the range touches; its end is exclusive.
    readUsagePerKey(db, utcDay(range.from.getTime()), utcDay(range.to.getTime() - 1)),
    readLatestFailures(db, range),
  ]);
  return {
    range: {
      name: range.name ?? null,
      from: range.from.toISOString(),
      to: range.to.toISOString(),
      bucketSeconds: range.bucketSeconds,
      refreshSeconds: range.refreshSeconds,
    },
    chart: denseChart(perBucket, range),
    latency: { queue_ms: percentiles(latency.queue_ms), run_ms: percentiles(latency.run_ms) },
    engines,
    queueDepth,
    hosts,
    usage,
    failures,
  };
}
