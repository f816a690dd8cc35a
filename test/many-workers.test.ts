import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { spawnCli } from './helpers/cli';
import { submitJobs, waitUntilAllFinished } from './helpers/load';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, type TestService } from './helpers/service';

const WORKERS = 4;
const JOBS = 400;

let api: TestService;
let target: TargetServer;
const hitsPerJob = new Map<string, number>();
const workers: ChildProcess[] = [];

beforeAll(async () => {
  target = await startTargetServer({
    '/n': (_req, res, url) => {
      const id = url.searchParams.get('i')!;
      hitsPerJob.set(id, (hitsPerJob.get(id) ?? 0) + 1);
      setTimeout(() => res.end(`page ${id}`), 5); // a little work, so claims overlap
    },
  });
  api = await startTestService({ roles: { api: true, worker: false } });
  for (let i = 0; i < WORKERS; i++) {
    workers.push(
      spawnCli(['worker'], {
        DATABASE_URL: api.databaseUrl,
        OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true',
        OMNISCRAPE_WORKER_CONCURRENCY: '10',
      }),
    );
  }
});
afterAll(async () => {
  for (const worker of workers) {
    worker.kill('SIGTERM');
    if (worker.exitCode === null) await once(worker, 'exit');
  }
  await api?.stop();
  await target?.close();
});

describe(`${WORKERS} worker processes on one Postgres`, () => {
  test('each job is fetched from its target exactly once and finished exactly once', async () => {
    const tally = await submitJobs(api, JOBS, (i) => `${target.origin}/n?i=${i}`);
    expect(tally.accepted).toHaveLength(JOBS);
    expect(await waitUntilAllFinished(api, tally.accepted, 60_000)).toEqual({ completed: JOBS });

    expect(hitsPerJob.size).toBe(JOBS);
    const fetchedMoreThanOnce = [...hitsPerJob].filter(([, hits]) => hits !== 1);
    expect(fetchedMoreThanOnce).toEqual([]);

    const [results] = await api.query(
      'select count(*)::int as rows, count(distinct job_id)::int as jobs from omniscrape.job_results where job_id = any($1::uuid[])',
      [tally.accepted],
    );
    expect(results).toEqual({ rows: JOBS, jobs: JOBS });
    const [attempts] = await api.query(
      'select max(attempts)::int as max from omniscrape.scrape_jobs where id = any($1::uuid[])',
      [tally.accepted],
    );
    expect(attempts.max).toBe(1);
  });
});
