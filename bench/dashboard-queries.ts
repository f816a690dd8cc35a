// Times the dashboard's queries on a database (`npm run bench:reporting` runs it on its 10M-row
// history: see docs/dashboard.md), each alone and all of them as one GET /dashboard/data reads
// them, for every named range: the median of 5 runs after one warm-up, in ms.
import { sql } from 'kysely';
import { dashboardFigures } from '../src/http/dashboard-data';
import { NAMED_RANGES, parseDashboardRange, type RangeName } from '../src/http/dashboard-range';
import {
  readHostHealth,
  readJobsPerBucket,
  readLatencyAndEngines,
  readLatestFailures,
  readQueueDepth,
  readUsagePerKey,
} from '../src/db/reporting/dashboard';
import { openStore } from '../src/db/pool';

const RUNS = 5;

async function medianMs(read: () => Promise<unknown>): Promise<number> {
  await read();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    await read();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return times.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
}

export type DashboardTimings = Record<RangeName, Record<string, number>>;

export async function timeDashboardQueries(
  url: string,
  log: (line: string) => void,
): Promise<DashboardTimings> {
  // As the API opens it: repeated statements run prepared.
  const store = openStore(url, { max: 8, prepareStatements: true });
  const { db } = store;
  try {
    const { rows } = await sql<{
      n: string;
    }>`select count(*)::text as n from omniscrape_reporting.job_history`.execute(db);
    log(`dashboard queries over ${rows[0]?.n} history rows`);
    const timings = {} as DashboardTimings;
    for (const name of Object.keys(NAMED_RANGES) as RangeName[]) {
      const range = parseDashboardRange({ range: name });
      const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
      const reads: Record<string, () => Promise<unknown>> = {
        chart: () => readJobsPerBucket(db, range, range.bucketSeconds),
        percentiles: () => readLatencyAndEngines(db, range),
        queue: () => readQueueDepth(db),
        hosts: () => readHostHealth(db),
        usage: () => readUsagePerKey(db, day(range.from.getTime()), day(range.to.getTime() - 1)),
        failures: () => readLatestFailures(db, range),
        'GET /dashboard/data': () => dashboardFigures(db, range),
      };
      timings[name] = {};
      for (const [what, read] of Object.entries(reads)) timings[name][what] = await medianMs(read);
      log(
        `${name}: ${Object.entries(timings[name])
          .map(([what, ms]) => `${what} ${ms.toFixed(0)}`)
          .join(', ')}`,
      );
    }
    return timings;
  } finally {
    await store.close();
  }
}
