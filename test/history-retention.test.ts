import { randomUUID } from 'node:crypto';
import { HISTORY_RETENTION_QUEUE } from '../src/maintenance/history-retention';
import { deleteExpiredHistory, rollUpDailyUsage } from '../src/maintenance/history-retention';
import { rollUpDay } from '../src/db/daily-usage-rollup';
import { slicesPastRetention } from '../src/db/history-retention-queries';
import {
  insertHistoryRows,
  isoDay,
  keyId,
  rollUpNotYetRun,
  utcDay,
  type HistoryRow,
} from './helpers/history-rows';
import { startTestService, type TestService } from './helpers/service';
import { waitFor } from './helpers/wait';

const HISTORY_DAYS = 30;
let service: TestService;
beforeAll(async () => {
  service = await startTestService({
    // The duty runs only when a test sends its job.
    env: { OMNISCRAPE_HISTORY_DAYS: String(HISTORY_DAYS), OMNISCRAPE_PURGE_CRON: '0 0 1 1 *' },
    tuning: { maintenancePollSeconds: 0.5 },
  });
});
afterAll(() => service?.stop());
const db = () => service.running.context.store.db;

const remaining = async (ids: string[]) =>
  (await service.query('select id from omniscrape.scrape_jobs where id = any($1)', [ids])).map((r) => r.id);
const usage = (day: Date) =>
  service.query('select * from omniscrape_reporting.daily_usage where day = $1::date order by api_key_name', [
    isoDay(day),
  ]);

/** A batch and webhook rows for these jobs, and a stored result for each, as the service writes them. */
async function referTo(jobIds: string[]): Promise<string> {
  const [{ api_key_id }] = await service.query(
    'select api_key_id from omniscrape.scrape_jobs where id = $1',
    [jobIds[0]],
  );
  const batchId = randomUUID();
  await service.query(
    `insert into omniscrape.batches (id, api_key_id, job_count) values ($1, $2, cardinality($3::uuid[]))`,
    [batchId, api_key_id, jobIds],
  );
  await service.query(
    `insert into omniscrape.batch_jobs (batch_id, position, job_id)
     select $1, ordinality - 1, id from unnest($2::uuid[]) with ordinality as j(id, ordinality)`,
    [batchId, jobIds],
  );
  await service.query(`update omniscrape.scrape_jobs set batch_id = $1 where id = any($2)`, [
    batchId,
    jobIds,
  ]);
  await service.query(
    `insert into omniscrape.job_webhooks (job_id, url) select id, 'http://127.0.0.1/hook' from unnest($1::uuid[]) id`,
    [jobIds],
  );
  await service.query(
    `insert into omniscrape.webhook_deliveries (job_id, attempt, redelivery, succeeded, duration_ms)
     select id, 1, false, true, 5 from unnest($1::uuid[]) id`,
    [jobIds],
  );
  await service.query(
    `insert into omniscrape.job_results (job_id, result, expires_at)
     select id, '{}'::jsonb, now() + interval '1 day' from unnest($1::uuid[]) id`,
    [jobIds],
  );
  return batchId;
}

const rowsReferring = async (jobIds: string[]) => {
  const count = async (table: string) =>
    Number(
      (
        await service.query(`select count(*) as n from omniscrape.${table} where job_id = any($1)`, [jobIds])
      )[0].n,
    );
  return {
    batch_jobs: await count('batch_jobs'),
    job_webhooks: await count('job_webhooks'),
    webhook_deliveries: await count('webhook_deliveries'),
    job_results: await count('job_results'),
  };
};

describe('history retention (OMNISCRAPE_HISTORY_DAYS)', () => {
  test('rows past the retention are deleted in batches after their days are rolled up; daily_usage keeps their figures', async () => {
    const [alpha, bravo] = [await keyId(service, 'alpha'), await keyId(service, 'bravo')];
    const old = utcDay(HISTORY_DAYS + 5, 3_600_000);
    const oldest = utcDay(HISTORY_DAYS + 40, 7_200_000);
    const recent = utcDay(HISTORY_DAYS - 2, 3_600_000);
    const job = (apiKeyId: string, createdAt: Date, i: number): HistoryRow => ({
      apiKeyId,
      createdAt,
      status: i % 4 === 3 ? 'failed' : 'completed',
      queueMs: 10 + i,
      runMs: 100 * (i + 1),
      charged: i % 4 === 3 ? 0 : 0.0035,
      ...(i % 4 === 3 && { errorCode: 'TARGET_UNREACHABLE' }),
    });
    const oldIds = await insertHistoryRows(service, [
      ...Array.from({ length: 7 }, (_, i) => job(alpha, old, i)),
      ...Array.from({ length: 3 }, (_, i) => job(bravo, old, i)),
      ...Array.from({ length: 2 }, (_, i) => job(alpha, oldest, i)),
    ]);
    const recentIds = await insertHistoryRows(
      service,
      Array.from({ length: 4 }, (_, i) => job(alpha, recent, i)),
    );
    await rollUpNotYetRun(service);
    // A batch with a job on each side of the retention, and one wholly past it.
    const mixedBatch = await referTo([oldIds[0]!, recentIds[0]!]);
    const oldBatch = await referTo(oldIds.slice(1, 4));
    const before = { old: await usage(old), oldest: await usage(oldest), recent: await usage(recent) };
    expect(before.old.map((r) => [r.api_key_name, r.jobs])).toEqual([
      ['alpha', '7'],
      ['bravo', '3'],
    ]);

    // Nothing goes before its day is rolled up.
    expect(await slicesPastRetention(db(), HISTORY_DAYS)).toEqual([]);
    expect(await deleteExpiredHistory(db(), { batchSize: 2, historyDays: HISTORY_DAYS })).toBe(0);

    await rollUpDailyUsage(db());
    const progress: number[] = [];
    const deleted = await deleteExpiredHistory(db(), {
      batchSize: 2,
      pauseMs: 1,
      historyDays: HISTORY_DAYS,
      onBatch: (n) => progress.push(n),
    });
    expect(deleted).toBe(oldIds.length);
    // Batches of at most 2, through three (day, key) slices of 2, 7 and 3 jobs.
    expect(progress.length).toBeGreaterThanOrEqual(Math.ceil(2 / 2) + Math.ceil(7 / 2) + Math.ceil(3 / 2));
    expect(progress.at(-1)).toBe(oldIds.length);
    expect(await remaining(oldIds)).toEqual([]);
    expect((await remaining(recentIds)).sort()).toEqual([...recentIds].sort());

    // What referred to the deleted jobs went with them; the rest stayed.
    expect(await rowsReferring(oldIds)).toEqual({
      batch_jobs: 0,
      job_webhooks: 0,
      webhook_deliveries: 0,
      job_results: 0,
    });
    expect(await rowsReferring(recentIds.slice(0, 1))).toEqual({
      batch_jobs: 1,
      job_webhooks: 1,
      webhook_deliveries: 1,
      job_results: 1,
    });
    const batches = await service.query('select id from omniscrape.batches where id = any($1)', [
      [mixedBatch, oldBatch],
    ]);
    expect(batches.map((b) => b.id)).toEqual([mixedBatch]);
    expect((await service.call('GET', `/v1/batches/${oldBatch}`)).status).toBe(404);

    // The same figures for the deleted days as before.
    expect({ old: await usage(old), oldest: await usage(oldest), recent: await usage(recent) }).toEqual(
      before,
    );
    const slices = await service.query(
      `select day::text, history_deleted_at is not null as deleted from omniscrape.daily_usage_rollup
        where day in ($1::date, $2::date, $3::date) order by day, api_key_id`,
      [isoDay(oldest), isoDay(old), isoDay(recent)],
    );
    expect(slices.map((s) => [s.day, s.deleted])).toEqual([
      [isoDay(oldest), true],
      [isoDay(old), true],
      [isoDay(old), true],
      [isoDay(recent), false],
    ]);
    // A row of that day appearing later (it cannot, short of a clock an hour off) leaves the
    // deleted slice's figures alone.
    const [late] = await insertHistoryRows(service, [
      { apiKeyId: alpha, createdAt: old, status: 'cancelled' },
    ]);
    await rollUpDay(db(), isoDay(old));
    expect(await usage(old)).toEqual(before.old);
    await service.query('delete from omniscrape.scrape_jobs where id = $1', [late]);
  });

  test('a day whose jobs were not all ended at its roll-up keeps its history until they end and it is rolled up again', async () => {
    const alpha = await keyId(service, 'alpha');
    const day = utcDay(HISTORY_DAYS + 3, 5 * 3_600_000);
    const [done, stuck] = await insertHistoryRows(service, [
      { apiKeyId: alpha, createdAt: day, status: 'completed', queueMs: 1, runMs: 5, charged: 0.0035 },
      { apiKeyId: alpha, createdAt: day, status: 'processing', queueMs: 1 },
    ]);
    await rollUpNotYetRun(service);
    await rollUpDailyUsage(db());
    expect(await deleteExpiredHistory(db(), { batchSize: 10, historyDays: HISTORY_DAYS })).toBe(0);
    expect((await remaining([done!, stuck!])).length).toBe(2);

    await service.query(
      `update omniscrape.scrape_jobs set status = 'timed_out', error_code = 'JOB_TIMEOUT', finished_at = started_at + interval '1 minute', updated_at = now() where id = $1`,
      [stuck],
    );
    await rollUpDailyUsage(db());
    expect(await deleteExpiredHistory(db(), { batchSize: 10, historyDays: HISTORY_DAYS })).toBe(2);
    const [figures] = await usage(day);
    expect(figures).toMatchObject({ jobs: '2', completed: '1', timed_out: '1', charged: '0.003500' });
  });

  test('the scheduled duty rolls up, then deletes the history past the retention', async () => {
    const bravo = await keyId(service, 'bravo');
    const day = utcDay(HISTORY_DAYS + 10);
    const ids = await insertHistoryRows(service, [
      { apiKeyId: bravo, createdAt: day, status: 'cancelled', errorCode: 'CANCELLED' },
      { apiKeyId: bravo, createdAt: day, status: 'completed', queueMs: 3, runMs: 30, charged: 0.0035 },
    ]);
    await rollUpNotYetRun(service);
    await service.running.context.boss.send(HISTORY_RETENTION_QUEUE, {}); // what its cron slot does
    await waitFor(async () => (await remaining(ids)).length === 0, {
      what: 'the duty to delete the old rows',
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    expect((await usage(day)).map((r) => [r.api_key_name, r.jobs, r.cancelled])).toEqual([
      ['bravo', '2', '1'],
    ]);
  });
});
