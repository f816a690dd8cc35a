import { rollUpDailyUsage } from '../src/maintenance/history-retention';
import { daysToRollUp } from '../src/db/daily-usage-rollup';
import { freePort } from './helpers/free-port';
import {
  insertHistoryRows,
  isoDay,
  keyId,
  percentileCont,
  rollUpNotYetRun,
  utcDay,
  type HistoryRow,
} from './helpers/history-rows';
import { useServiceAndTarget, waitForJob } from './helpers/service';

// The maintenance duties run only when a test sends their job: no roll-up happens behind a test's back.
const env = useServiceAndTarget({ env: { OMNISCRAPE_PURGE_CRON: '0 0 1 1 *' } });
const db = () => env.service.running.context.store.db;

/** The documented interface (docs/reporting.md): each view's columns, in order, with their types. */
const INTERFACE = {
  job_history: [
    ['job_id', 'uuid'],
    ['api_key_name', 'text'],
    ['batch_id', 'uuid'],
    ['kind', 'text'],
    ['url', 'text'],
    ['host', 'text'],
    ['status', 'text'],
    ['status_code', 'integer'],
    ['error_code', 'text'],
    ['created_at', 'timestamp with time zone'],
    ['started_at', 'timestamp with time zone'],
    ['finished_at', 'timestamp with time zone'],
    ['queue_ms', 'double precision'],
    ['run_ms', 'double precision'],
    ['attempts', 'integer'],
    ['charged', 'numeric'],
    ['result_bytes', 'integer'],
    ['result_expired', 'boolean'],
    ['request_id', 'text'],
    ['engine', 'text'],
  ],
  daily_usage: [
    ['day', 'date'],
    ['api_key_name', 'text'],
    ['jobs', 'bigint'],
    ['completed', 'bigint'],
    ['failed', 'bigint'],
    ['timed_out', 'bigint'],
    ['cancelled', 'bigint'],
    ['charged', 'numeric'],
    ['p50_run_ms', 'double precision'],
    ['p95_run_ms', 'double precision'],
  ],
  host_health: [
    ['host', 'text'],
    ['jobs', 'bigint'],
    ['success_rate', 'double precision'],
    ['p95_run_ms', 'double precision'],
    ['top_error_code', 'text'],
    ['last_failure_at', 'timestamp with time zone'],
    ['rendered', 'bigint'],
  ],
};

const ms = (from: Date | null, to: Date | null) => (from && to ? to.getTime() - from.getTime() : null);

describe('the reporting views (schema omniscrape_reporting)', () => {
  test('each view has exactly the documented columns, in order, with their types', async () => {
    const rows = await env.service.query(
      `select table_name, column_name, data_type from information_schema.columns
        where table_schema = 'omniscrape_reporting' order by table_name, ordinal_position`,
    );
    const byView: Record<string, string[][]> = {};
    for (const r of rows) (byView[r.table_name] ??= []).push([r.column_name, r.data_type]);
    expect(byView).toEqual(INTERFACE);
  });

  test("job_history has a row for each job, sync or async, batched or not, with its history's figures", async () => {
    const { service, target } = env;
    const async = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain` });
    const closed = `http://127.0.0.1:${await freePort()}/`;
    const failing = await service.call('POST', '/v1/scrape/async', { url: closed });
    const batch = await service.call('POST', '/v1/scrape/batch', {
      requests: [{ url: `${target.origin}/page` }, { url: `${target.origin}/plain?b=2` }],
    });
    const sync = await service.call('POST', '/v1/scrape', { url: `${target.origin}/plain?sync=1` });
    expect([async.status, failing.status, batch.status, sync.status]).toEqual([202, 202, 202, 200]);
    const asyncIds: string[] = [async.body.job_id, failing.body.job_id, ...batch.body.job_ids];
    for (const id of asyncIds) await waitForJob(service, id);

    const [syncRow] = await service.query(`select id from omniscrape.scrape_jobs where url like '%sync=1'`);
    const ids = [...asyncIds, syncRow.id];
    const raw = await service.query('select * from omniscrape.scrape_jobs where id = any($1)', [ids]);
    const views = await service.query(
      'select * from omniscrape_reporting.job_history where job_id = any($1)',
      [ids],
    );
    expect(views).toHaveLength(ids.length);
    for (const view of views) {
      const row = raw.find((r) => r.id === view.job_id)!;
      expect(view).toEqual({
        job_id: row.id,
        api_key_name: 'alpha',
        batch_id: batch.body.job_ids.includes(row.id) ? batch.body.batch_id : null,
        kind: row.kind,
        url: row.url,
        host: '127.0.0.1',
        status: row.status,
        status_code: row.target_status_code,
        error_code: row.error_code,
        created_at: row.created_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
        queue_ms: expect.any(Number),
        run_ms: expect.any(Number),
        attempts: row.attempts,
        charged: row.charged,
        result_bytes: row.result_bytes,
        result_expired: row.kind === 'async' && row.status === 'completed' ? false : null,
        request_id: row.request_id,
        engine: row.engine,
      });
      // The row's times come back to the millisecond; the view's figures are to the microsecond.
      expect(Math.abs(view.queue_ms - Math.max(0, ms(row.created_at, row.started_at)!))).toBeLessThan(1);
      expect(Math.abs(view.run_ms - Math.max(0, ms(row.started_at, row.finished_at)!))).toBeLessThan(1);
    }
    const byId = new Map(views.map((v) => [v.job_id, v]));
    expect(byId.get(async.body.job_id)).toMatchObject({
      status: 'completed',
      status_code: 200,
      charged: '0.003500',
      engine: 'http',
    });
    expect(byId.get(failing.body.job_id)).toMatchObject({
      status: 'failed',
      error_code: 'TARGET_UNREACHABLE',
      charged: '0.000000',
      result_bytes: null,
      engine: 'http',
    });
    expect(byId.get(syncRow.id)).toMatchObject({
      kind: 'sync',
      status: 'completed',
      result_bytes: 9,
      engine: 'http',
    });
    for (const id of batch.body.job_ids) expect(byId.get(id)).toMatchObject({ engine: 'http' });

    // Once the result's TTL has passed, the view says so.
    await service.query(
      `update omniscrape.scrape_jobs set result_expires_at = now() - interval '1 second' where id = $1`,
      [async.body.job_id],
    );
    const [expired] = await service.query(
      'select result_expired from omniscrape_reporting.job_history where job_id = $1',
      [async.body.job_id],
    );
    expect(expired.result_expired).toBe(true);
  });

  test('daily_usage counts each key’s jobs per UTC day, and reads the same once the days are rolled up', async () => {
    const [alpha, bravo] = [await keyId(env.service, 'alpha'), await keyId(env.service, 'bravo')];
    const day5 = utcDay(5, 3_600_000);
    const day3 = utcDay(3, 23 * 3_600_000); // late in its day: its run ends on the next day, still counted here
    const rows: HistoryRow[] = [
      { apiKeyId: alpha, createdAt: day5, status: 'completed', queueMs: 20, runMs: 100, charged: 0.0035 },
      { apiKeyId: alpha, createdAt: day5, status: 'completed', queueMs: 10, runMs: 300, charged: 0.0035 },
      { apiKeyId: alpha, createdAt: day5, status: 'completed', queueMs: 10, runMs: 250, charged: 0.0035 },
      {
        apiKeyId: alpha,
        createdAt: day5,
        status: 'failed',
        queueMs: 5,
        runMs: 1000,
        errorCode: 'TARGET_UNREACHABLE',
      },
      { apiKeyId: alpha, createdAt: day5, status: 'cancelled' },
      {
        apiKeyId: bravo,
        createdAt: day5,
        status: 'timed_out',
        queueMs: 1,
        runMs: 30_000,
        errorCode: 'TARGET_TIMEOUT',
      },
      { apiKeyId: alpha, createdAt: day3, status: 'completed', queueMs: 50, runMs: 4_000_000, charged: 0.01 },
    ];
    await insertHistoryRows(env.service, rows);
    await rollUpNotYetRun(env.service);
    const usage = () =>
      env.service.query(
        `select * from omniscrape_reporting.daily_usage where day in ($1::date, $2::date) order by day, api_key_name`,
        [isoDay(day5), isoDay(day3)],
      );
    const expected = [
      {
        day: isoDay(day5),
        api_key_name: 'alpha',
        jobs: '5',
        completed: '3',
        failed: '1',
        timed_out: '0',
        cancelled: '1',
        charged: '0.010500',
        p50_run_ms: percentileCont([100, 300, 250, 1000], 0.5),
        p95_run_ms: percentileCont([100, 300, 250, 1000], 0.95),
      },
      {
        day: isoDay(day5),
        api_key_name: 'bravo',
        jobs: '1',
        completed: '0',
        failed: '0',
        timed_out: '1',
        cancelled: '0',
        charged: '0.000000',
        p50_run_ms: 30_000,
        p95_run_ms: 30_000,
      },
      {
        day: isoDay(day3),
        api_key_name: 'alpha',
        jobs: '1',
        completed: '1',
        failed: '0',
        timed_out: '0',
        cancelled: '0',
        charged: '0.010000',
        p50_run_ms: 4_000_000,
        p95_run_ms: 4_000_000,
      },
    ];
    const asText = (rs: any[]) => rs.map((r) => ({ ...r, day: isoDay(r.day) }));
    expect(asText(await usage())).toEqual(expected);

    expect(await rollUpDailyUsage(db())).toBeGreaterThanOrEqual(3);
    const rolled = await env.service.query(
      `select day, jobs from omniscrape.daily_usage_rollup where day in ($1::date, $2::date)`,
      [isoDay(day5), isoDay(day3)],
    );
    expect(rolled).toHaveLength(3);
    expect(asText(await usage())).toEqual(expected);
    expect(await daysToRollUp(db())).toEqual([]);
  });

  test('a day rolled up while one of its jobs was unfinished is rolled up again once that job ends', async () => {
    const alpha = await keyId(env.service, 'alpha');
    const day = utcDay(2, 12 * 3_600_000);
    const [, late] = await insertHistoryRows(env.service, [
      { apiKeyId: alpha, createdAt: day, status: 'completed', queueMs: 1, runMs: 10, charged: 0.0035 },
      { apiKeyId: alpha, createdAt: day, status: 'queued' },
    ]);
    await rollUpNotYetRun(env.service);
    await rollUpDailyUsage(db());
    const figures = async () =>
      (
        await env.service.query(
          `select jobs, completed, charged from omniscrape_reporting.daily_usage where day = $1::date and api_key_name = 'alpha'`,
          [isoDay(day)],
        )
      )[0];
    expect(await figures()).toEqual({ jobs: '2', completed: '1', charged: '0.003500' });
    expect(await daysToRollUp(db())).toEqual([]);

    await env.service.query(
      `update omniscrape.scrape_jobs set status = 'completed', started_at = now(), finished_at = now(),
              charged = 0.0035, updated_at = now() where id = $1`,
      [late],
    );
    expect(await daysToRollUp(db())).toEqual([isoDay(day)]);
    await rollUpDailyUsage(db());
    expect(await figures()).toEqual({ jobs: '2', completed: '2', charged: '0.007000' });
    const [rollup] = await env.service.query(
      `select unfinished from omniscrape.daily_usage_rollup where day = $1::date and api_key_id = $2`,
      [isoDay(day), alpha],
    );
    expect(rollup.unfinished).toBe('0');
  });

  test('host_health sums up each host over the last 24 hours: success rate, p95 run time, top error, last failure, rendered pages', async () => {
    const alpha = await keyId(env.service, 'alpha');
    const now = Date.now();
    const hour = (h: number) => new Date(now - h * 3_600_000);
    const host = `h-${now}.example`;
    const [, , , , lastFailure] = await insertHistoryRows(
      env.service,
      [
        { createdAt: hour(20), status: 'completed', queueMs: 1, runMs: 100, engine: 'browser' },
        { createdAt: hour(10), status: 'completed', queueMs: 1, runMs: 200, engine: 'browser' },
        { createdAt: hour(5), status: 'completed', queueMs: 1, runMs: 400 },
        { createdAt: hour(4), status: 'failed', queueMs: 1, runMs: 50, errorCode: 'TARGET_UNREACHABLE' },
        { createdAt: hour(2), status: 'failed', queueMs: 1, runMs: 60, errorCode: 'TARGET_UNREACHABLE' },
        { createdAt: hour(3), status: 'timed_out', queueMs: 1, runMs: 30_000, errorCode: 'TARGET_TIMEOUT' },
        { createdAt: hour(1), status: 'cancelled', errorCode: 'CANCELLED' },
        { createdAt: hour(1), status: 'queued' },
        // More than 24 hours ago: not counted.
        { createdAt: hour(25), status: 'failed', queueMs: 1, runMs: 9, errorCode: 'TARGET_TLS_ERROR' },
        {
          createdAt: hour(26),
          status: 'failed',
          queueMs: 1,
          runMs: 9,
          errorCode: 'TARGET_TLS_ERROR',
          engine: 'browser',
        },
      ].map((row) => ({ ...row, apiKeyId: alpha, host }) as HistoryRow),
    );
    const [failedLast] = await env.service.query(
      'select finished_at from omniscrape.scrape_jobs where id = $1',
      [lastFailure],
    );
    const [health] = await env.service.query(
      'select * from omniscrape_reporting.host_health where host = $1',
      [host],
    );
    expect(health).toEqual({
      host,
      jobs: '8',
      success_rate: 0.5, // 3 completed of 6 that ran to an outcome (cancelled and queued never did)
      p95_run_ms: percentileCont([100, 200, 400, 50, 60, 30_000], 0.95),
      top_error_code: 'TARGET_UNREACHABLE',
      last_failure_at: failedLast.finished_at,
      rendered: '2',
    });
    const everyHost = await env.service.query('select host from omniscrape_reporting.host_health');
    expect(everyHost.map((r) => r.host)).toContain(host);
  });
});
