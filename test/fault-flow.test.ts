import { startDisposablePostgres } from './helpers/postgres-server';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, type TestService } from './helpers/service';
import { submitJobs, waitUntilAllFinished } from './helpers/load';

// Faults under load: 1,000 jobs flow while Postgres is restarted, or while every one of the
// service's connections is killed. Nothing accepted with 202 may be lost. On a durable Postgres
// (fsync and synchronous_commit on), as in production.
const JOBS = 1000;

let postgres: Awaited<ReturnType<typeof startDisposablePostgres>>;
let service: TestService;
let target: TargetServer;

beforeAll(async () => {
  target = await startTargetServer({ '/n': (_req, res) => void res.end('ok') });
  postgres = await startDisposablePostgres({ durable: true });
  service = await startTestService({
    databaseUrl: postgres.url,
    env: { OMNISCRAPE_WORKER_CONCURRENCY: '20' },
  });
});
afterAll(async () => {
  await service?.stop().catch(() => undefined);
  await postgres?.destroy();
  await target?.close();
});

function report(
  name: string,
  faults: number,
  tally: Awaited<ReturnType<typeof submitJobs>>,
  finished: Record<string, number>,
) {
  const done = Object.values(finished).reduce((a, b) => a + b, 0);
  // Figures for docs/reliability.md.
  console.log(
    `[reliability] ${name}: faults injected ${faults}, jobs accepted ${tally.accepted.length}, ` +
      `503 answers ${tally.unavailable}, other errors ${JSON.stringify(tally.unexpected)}, ` +
      `jobs finished ${done} ${JSON.stringify(finished)}, jobs lost ${tally.accepted.length - done}`,
  );
}

describe(`${JOBS} jobs flowing through faults`, () => {
  test('Postgres restarted mid-flow: submissions get 503 meanwhile, never a 500, and every accepted job finishes', async () => {
    let restarted: Promise<void> | undefined;
    const tally = await submitJobs(service, JOBS, (i) => `${target.origin}/n?restart=${i}`, {
      onAccepted: (count) => {
        if (count === 300) {
          restarted = (async () => {
            await postgres.stop();
            await new Promise((r) => setTimeout(r, 1000));
            await postgres.start();
          })();
        }
      },
    });
    await restarted;
    expect(tally.unexpected).toEqual({});
    expect(tally.accepted).toHaveLength(JOBS);
    expect(tally.unavailable).toBeGreaterThan(0);
    const finished = await waitUntilAllFinished(service, tally.accepted, 90_000);
    report('Postgres restart', 1, tally, finished);
    expect(finished).toEqual({ completed: JOBS });
  }, 150_000);

  test('all connections terminated twice mid-flow: every accepted job finishes', async () => {
    const terminate = () =>
      service
        .query(
          'select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
        )
        .catch(() => undefined);
    const tally = await submitJobs(service, JOBS, (i) => `${target.origin}/n?terminate=${i}`, {
      onAccepted: async (count) => {
        if (count === 250 || count === 600) await terminate();
      },
    });
    expect(tally.unexpected).toEqual({});
    expect(tally.accepted).toHaveLength(JOBS);
    const finished = await waitUntilAllFinished(service, tally.accepted, 90_000);
    report('pg_terminate_backend x2', 2, tally, finished);
    expect(finished).toEqual({ completed: JOBS });
  }, 150_000);
});
