import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startPackagedPostgres, type PackagedPostgres } from './helpers/packaged-postgres';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, waitForJob, type TestService } from './helpers/service';
import { waitFor } from './helpers/wait';

// Debian's packaged Postgres has LLVM JIT and turns it on by default, as most managed services do;
// a plan costed past jit_above_cost (100,000) is compiled first, which costs a short statement
// hundreds of milliseconds. auto_explain writes the plan of every statement the service runs
// (nested ones too, inside key_slots) to the server log, with a JIT section when it was compiled.
let postgres: PackagedPostgres;
let target: TargetServer;
let service: TestService | undefined;

beforeAll(async () => {
  target = await startTargetServer();
  postgres = await startPackagedPostgres({
    shared_preload_libraries: 'auto_explain',
    'auto_explain.log_min_duration': '0',
    'auto_explain.log_analyze': 'on',
    'auto_explain.log_nested_statements': 'on',
  });
});
afterAll(async () => {
  await service?.stop();
  await postgres?.stop();
  await target?.close();
});

/** The plans logged since `from`, each with its statement text. */
function plansSince(from: number): string[] {
  return postgres
    .log()
    .slice(from)
    .split(/\n(?=\S[^\n]*LOG: {2}duration: )/)
    .filter((entry) => entry.includes('Query Text:'));
}

/**
 * Runs a marker statement and waits for its plan in the log: each plan is logged as its statement
 * ends, so by then the plans of every statement that ended before it are there too.
 */
async function logCaughtUp(from: number): Promise<void> {
  const marker = `log-marker-${randomUUID()}`;
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    await client.query(`select '${marker}' as marker`);
  } finally {
    await client.end();
  }
  await waitFor(() => plansSince(from).some((plan) => plan.includes(marker)), {
    what: 'the marker statement in the server log',
  });
}

describe('on a stock Postgres with JIT', () => {
  test('this server JIT-compiles a plan whose cost a disabled plan node pushed up (the check below can see JIT)', async () => {
    const from = postgres.log().length;
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      await client.query('set enable_sort = off');
      await client.query('select g from generate_series(1, 10) g order by g desc');
    } finally {
      await client.end();
    }
    // The log line follows the answer.
    await waitFor(() => plansSince(from).some((plan) => plan.includes('JIT:')), {
      what: 'a JIT plan in the log',
    });
  });

  test('no statement of the job flow (submit, claim, settle, poll, sync scrape) is JIT-compiled', async () => {
    const from = postgres.log().length;
    service = await startTestService({
      databaseUrl: postgres.url,
      env: { OMNISCRAPE_WORKER_CONCURRENCY: '10' },
    });
    const submitted = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        service!.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain?i=${i}` }),
      ),
    );
    expect(submitted.every((r) => r.status === 202)).toBe(true);
    for (const r of submitted) expect((await waitForJob(service, r.body.job_id)).status).toBe('completed');
    expect((await service.call('POST', '/v1/scrape', { url: `${target.origin}/plain` })).status).toBe(200);
    await logCaughtUp(from);

    const plans = plansSince(from);
    // The claim was seen: pg-boss's fetch (FOR UPDATE SKIP LOCKED) and the key slot count inside key_slots.
    expect(plans.some((plan) => /skip locked/i.test(plan))).toBe(true);
    expect(plans.some((plan) => /from omniscrape\.scrape_jobs j/i.test(plan))).toBe(true);
    const compiled = plans.filter((plan) => plan.includes('JIT:'));
    expect(compiled.map((plan) => plan.slice(0, 600))).toEqual([]);
  }, 120_000);
});
