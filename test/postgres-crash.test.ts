import { startDisposablePostgres } from './helpers/postgres-server';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, type TestService } from './helpers/service';
import { submitJobs, waitUntilAllFinished } from './helpers/load';

// A crash, not a restart: Postgres with fsync and synchronous_commit on (its defaults), every one
// of its processes SIGKILLed mid-flow, so the WAL buffers in shared memory are lost. Claims commit
// without waiting for their flush (CLAIM_TRANSACTION_SETTINGS), so a crash can undo claims whose
// scrapes had begun; outcomes and submissions commit durably. Whatever the crash undid, every
// job that got a 202 must complete, and none may complete twice.
const JOBS = 1000;

let postgres: Awaited<ReturnType<typeof startDisposablePostgres>>;
let service: TestService;
let target: TargetServer;

beforeAll(async () => {
  target = await startTargetServer({ '/n': (_req, res) => void setTimeout(() => res.end('ok'), 5) });
  postgres = await startDisposablePostgres({ durable: true });
  service = await startTestService({
    databaseUrl: postgres.url,
    env: { OMNISCRAPE_WORKER_CONCURRENCY: '20' },
  });
  // Every completion the history commits, kept by the same transaction that commits it: a job
  // that completed twice (its row moved to completed, then again after some rollback) shows twice.
  await service.query(
    `create table completions (job_id uuid not null, at timestamptz not null default clock_timestamp())`,
  );
  await service.query(`
    create function record_completion() returns trigger language plpgsql as $$
    begin insert into completions (job_id) values (new.id); return new; end $$`);
  await service.query(`
    create trigger record_completion after update of status on omniscrape.scrape_jobs
    for each row when (new.status = 'completed' and old.status is distinct from 'completed') execute function record_completion()`);
});
afterAll(async () => {
  await service?.stop().catch(() => undefined);
  await postgres?.destroy();
  await target?.close();
});

describe('Postgres crash (SIGKILL, WAL buffers lost) with durable settings', () => {
  test('every job that got a 202 completes exactly once, with its result, after Postgres is killed mid-flow and started again', async () => {
    let crashed: Promise<void> | undefined;
    const tally = await submitJobs(service, JOBS, (i) => `${target.origin}/n?crash=${i}`, {
      onAccepted: (count) => {
        if (count === 400) {
          crashed = (async () => {
            await postgres.crash();
            await new Promise((r) => setTimeout(r, 500));
            await postgres.start();
          })();
        }
      },
    });
    await crashed;
    expect(tally.unexpected).toEqual({});
    expect(tally.accepted).toHaveLength(JOBS);
    const finished = await waitUntilAllFinished(service, tally.accepted, 120_000);
    const twice = await service.query(
      `select job_id, count(*)::int as n from completions group by job_id having count(*) > 1`,
    );
    const [results] = await service.query(
      `select count(*)::int as n from omniscrape.job_results where job_id = any($1::uuid[])`,
      [tally.accepted],
    );
    const [rerun] = await service.query(
      `select count(*)::int as n from omniscrape.scrape_jobs where id = any($1::uuid[]) and attempts > 1`,
      [tally.accepted],
    );
    const [setting] = await service.query(
      `select current_setting('fsync') as fsync, current_setting('synchronous_commit') as synchronous_commit`,
    );
    console.log(
      `[reliability] Postgres crash (SIGKILL of every process, fsync ${setting.fsync}, synchronous_commit ${setting.synchronous_commit}): ` +
        `jobs accepted ${tally.accepted.length}, 503 answers ${tally.unavailable}, jobs finished ${JSON.stringify(finished)}, ` +
        `claimed again after the crash ${rerun.n}, completed twice ${twice.length}, results stored ${results.n}`,
    );
    expect(setting).toEqual({ fsync: 'on', synchronous_commit: 'on' });
    expect(finished).toEqual({ completed: JOBS });
    expect(twice).toEqual([]);
    expect(results.n).toBe(JOBS);
  }, 200_000);
});
