import { PURGE_RESULTS_QUEUE } from '../src/maintenance/result-purge';
import { purgeExpiredResults } from '../src/maintenance/result-purge';
import { useServiceAndTarget, waitForJob } from './helpers/service';
import { waitFor } from './helpers/wait';

// An hour: no result expires on its own during these tests; each test expires the ones it means to.
const TTL_SECONDS = 3600;
const env = useServiceAndTarget({
  env: { OMNISCRAPE_RESULT_TTL_SECONDS: String(TTL_SECONDS) },
  tuning: { maintenancePollSeconds: 0.5 }, // a queued purge is picked up within half a second
});

async function completedJobs(count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await env.service.call('POST', '/v1/scrape/async', { url: `${env.target.origin}/plain` });
    ids.push(res.body.job_id);
  }
  for (const id of ids) expect((await waitForJob(env.service, id)).status).toBe('completed');
  return ids;
}

/** What the TTL's passing does to these jobs' results, without waiting for it: their expiry moves into the past. */
async function expire(ids: string[]): Promise<void> {
  await env.service.query(
    `update omniscrape.job_results set expires_at = now() - interval '1 second' where job_id = any($1)`,
    [ids],
  );
  await env.service.query(
    `update omniscrape.scrape_jobs set result_expires_at = now() - interval '1 second' where id = any($1)`,
    [ids],
  );
}

const dbNow = async (): Promise<Date> => (await env.service.query('select now() as now'))[0].now;

describe('result retention', () => {
  test('after the TTL the purge deletes results in bounded batches and the job answers RESULT_EXPIRED with its history kept', async () => {
    const before = await dbNow();
    const [kept, ...ids] = await completedJobs(6);
    const after = await dbNow();
    const fresh = await env.service.call('GET', `/v1/jobs/${ids[0]}`);
    expect(fresh.body.data.result.data.content).toBe('just text');
    // Each result expires the TTL after its job completed.
    for (const [{ expires_at }] of await Promise.all(
      ids.map((id) =>
        env.service.query('select expires_at from omniscrape.job_results where job_id = $1', [id]),
      ),
    )) {
      expect(expires_at.getTime()).toBeGreaterThanOrEqual(before.getTime() + TTL_SECONDS * 1000);
      expect(expires_at.getTime()).toBeLessThanOrEqual(after.getTime() + TTL_SECONDS * 1000);
    }

    await expire(ids);
    const batches: number[] = [];
    const purged = await purgeExpiredResults(env.service.running.context.store.db, {
      batchSize: 2,
      pauseMs: 1,
      onBatch: (n) => batches.push(n),
    });
    expect(purged).toBe(5);
    expect(batches).toEqual([2, 4, 5]); // batches of 2, until one comes back short
    expect((await env.service.call('GET', `/v1/jobs/${kept}`)).body.data.result.data.content).toBe(
      'just text',
    ); // not expired: kept

    const expired = await env.service.call('GET', `/v1/jobs/${ids[0]}`);
    expect(expired.status).toBe(200);
    expect(expired.body.success).toBe(true);
    expect(expired.body.data).toMatchObject({
      job_id: ids[0],
      status: 'completed',
      code: 'RESULT_EXPIRED',
      error: expect.any(String),
    });
    expect(expired.body.data.result).toBeUndefined();

    const rows = await env.service.query(
      `select j.status, j.result_bytes, r.job_id as result_row
         from omniscrape.scrape_jobs j left join omniscrape.job_results r on r.job_id = j.id where j.id = any($1)`,
      [ids],
    );
    expect(rows).toHaveLength(5);
    for (const row of rows) expect(row).toEqual({ status: 'completed', result_bytes: 9, result_row: null });
  });

  test('an expired result is not served even before the purge has run', async () => {
    const [id] = await completedJobs(1);
    await expire([id!]);
    const res = await env.service.call('GET', `/v1/jobs/${id}`);
    expect(res.body.data).toMatchObject({ status: 'completed', code: 'RESULT_EXPIRED' });
    const stored = await env.service.query('select 1 from omniscrape.job_results where job_id = $1', [id]);
    expect(stored).toHaveLength(1); // still there: no purge has run
  });

  test('the purge is scheduled through pg-boss and a worker runs it', async () => {
    const { boss } = env.service.running.context;
    const schedules = await boss.getSchedules(PURGE_RESULTS_QUEUE);
    expect(schedules.map((s) => s.cron)).toEqual([env.service.config.purgeCron]);

    const [id] = await completedJobs(1);
    await expire([id!]);
    await boss.send(PURGE_RESULTS_QUEUE, {}); // what the cron slot does when it comes due
    await waitFor(
      async () =>
        (await env.service.query('select 1 from omniscrape.job_results where job_id = $1', [id])).length ===
        0,
      { what: 'the worker to purge the expired result', timeoutMs: 30_000 },
    );
  });
});
