// Times the dashboard's queries on the database at DATABASE_URL (a large history: see
// docs/dashboard.md), each alone and all of them as one GET /dashboard/data reads them, for every
// named range. Prints the median of 5 runs after one warm-up, in ms.
//
//   npx tsc -p tsconfig.bench.json && DATABASE_URL=postgres://… node dist/bench/dashboard-queries.js
import { sql } from 'kysely';
import { dashboardFigures } from '../src/http/dashboard-data';
import { NAMED_RANGES, parseDashboardRange, type RangeName } from '../src/http/dashboard-range';
import {
  readHostHealth,
  readJobsPerBucket,
  readLatency,
  readLatestFailures,
  readQueueDepth,
  readUsagePerKey,
} from '../src/store/dashboard';
import { openStore } from '../src/store/pool';

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

async function main(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('set DATABASE_URL to the database to time');
  // As the API opens it: repeated statements run prepared.
  const store = openStore(url, { max: 8, prepareStatements: true });
  const { db } = store;
  try {
    const { rows } = await sql<{
      n: string;
    }>`select count(*)::text as n from omniscrape_reporting.job_history`.execute(db);
    console.log(`history rows: ${rows[0]?.n}`);
    for (const name of Object.keys(NAMED_RANGES) as RangeName[]) {
      const range = parseDashboardRange({ range: name });
      const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
      const reads: Record<string, () => Promise<unknown>> = {
        chart: () => readJobsPerBucket(db, range, range.bucketSeconds),
        percentiles: () => readLatency(db, range),
        queue: () => readQueueDepth(db),
        hosts: () => readHostHealth(db),
        usage: () => readUsagePerKey(db, day(range.from.getTime()), day(range.to.getTime() - 1)),
        failures: () => readLatestFailures(db, range),
        'GET /dashboard/data': () => dashboardFigures(db, range),
      };
      const line: string[] = [];
      for (const [what, read] of Object.entries(reads))
        line.push(`${what} ${(await medianMs(read)).toFixed(0)}`);
      console.log(`${name}: ${line.join(', ')}`);
    }
  } finally {
    await store.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
