import { PURGE_RESULTS_QUEUE } from '../src/jobs/queue';
import { purgeExpiredResults } from '../src/maintenance/result-purge';
import { useServiceAndTarget, waitForJob } from './helpers/service';

const env = useServiceAndTarget({ env: { OMNISCRAPE_RESULT_TTL_SECONDS: '1' } });

async function completedJobs(count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await env.service.call('POST', '/v1/scrape/async', { url: `${env.target.origin}/plain` });
    ids.push(res.body.job_id);
  }
  for (const id of ids) expect((await waitForJob(env.service, id)).status).toBe('completed');
  return ids;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('result retention', () => {
  test('after the TTL the purge deletes results in bounded batches and the job answers RESULT_EXPIRED with its history kept', async () => {
    const ids = await completedJobs(5);
    const fresh = await env.service.call('GET', `/v1/jobs/${ids[0]}`);
    expect(fresh.body.data.result.data.content).toBe('just text');

    await sleep(1200);
    const batches: number[] = [];
    const purged = await purgeExpiredResults(env.service.running.context.store.db, {
      batchSize: 2,
      pauseMs: 1,
      onBatch: (n) => batches.push(n),
    });
    expect(purged).toBeGreaterThanOrEqual(5);
    expect(batches.length).toBeGreaterThanOrEqual(3); // 2 + 2 + 1 (or more, with earlier tests' results)

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
    await sleep(1200);
    const res = await env.service.call('GET', `/v1/jobs/${id}`);
    expect(res.body.data).toMatchObject({ status: 'completed', code: 'RESULT_EXPIRED' });
  });

  test('the purge is scheduled through pg-boss and a worker runs it', async () => {
    const { boss } = env.service.running.context;
    const schedules = await boss.getSchedules(PURGE_RESULTS_QUEUE);
    expect(schedules.map((s) => s.cron)).toEqual([env.service.config.purgeCron]);

    const [id] = await completedJobs(1);
    await sleep(1200);
    await boss.send(PURGE_RESULTS_QUEUE, {}); // what the cron slot does when it comes due
    const deadline = Date.now() + 15_000;
    let remaining = 1;
    while (remaining > 0 && Date.now() < deadline) {
      [{ n: remaining }] = await env.service.query(
        'select count(*)::int as n from omniscrape.job_results where job_id = $1',
        [id],
      );
      await sleep(100);
    }
    expect(remaining).toBe(0);
  });
});
