import net from 'node:net';
import pg from 'pg';
import { resultPurge } from '../src/maintenance/result-purge';
import type { BrowserObserver } from '../src/scraper/browser-observer';
import { freePort } from './helpers/free-port';
import { scrapeMetrics, valueOf, type Sample } from './helpers/prometheus';
import { runCli } from './helpers/cli';
import { startRole, type RoleProcess } from './helpers/role-processes';
import { KEY_A, KEY_B, startTestService, waitForJob, type TestService } from './helpers/service';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { waitFor } from './helpers/wait';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

let target: TargetServer;
beforeAll(async () => {
  target = await startTargetServer();
});
afterAll(async () => {
  await target?.close();
});

/** Every label value of an exposition, each with the sample it labels. */
const labelValues = (samples: Sample[]) =>
  samples.flatMap((s) => Object.values(s.labels).map((value) => ({ value, sample: s.name })));

/** What a label must never hold: a key's name or text, a URL, a host, a job's id. */
function expectNothingTenantSpecific(samples: Sample[]): void {
  const leaks = labelValues(samples).filter(
    ({ value }) =>
      ['alpha', 'bravo', KEY_A, KEY_B].some((secret) => value.includes(secret)) ||
      /:\/\/|127\.0\.0\.1|localhost/.test(value) ||
      UUID.test(value),
  );
  expect(leaks).toEqual([]);
}

describe('GET /metrics on the API port', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(async () => {
    await service?.stop();
  });

  test('after a few jobs its counters and histograms have moved, by route pattern, and no label names a key or a URL', async () => {
    const { origin } = target;
    const ok = await service.call('POST', '/v1/scrape/async', { url: `${origin}/plain` });
    const unreachable = await service.call('POST', '/v1/scrape/async', {
      url: `http://127.0.0.1:${await freePort()}/`,
    });
    const notFound = await service.call('POST', '/v1/scrape/async', { url: `${origin}/status?code=404` });
    const batch = await service.call('POST', '/v1/scrape/batch', {
      requests: [{ url: `${origin}/page` }, { url: `${origin}/status?code=503` }],
    });
    const sync = await service.call('POST', '/v1/scrape', { url: `${origin}/plain?sync=1` });
    expect([ok.status, unreachable.status, notFound.status, batch.status, sync.status]).toEqual([
      202, 202, 202, 202, 200,
    ]);
    const ids: string[] = [
      ok.body.job_id,
      unreachable.body.job_id,
      notFound.body.job_id,
      ...batch.body.job_ids,
    ];
    const ended = await Promise.all(ids.map((id) => waitForJob(service, id)));
    expect(ended.map((job) => job.status)).toEqual([
      'completed',
      'failed',
      'completed',
      'completed',
      'completed',
    ]);
    expect((await service.call('GET', '/v1/jobs/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await service.call('GET', '/v1/jobs', undefined, null)).status).toBe(401);
    expect((await service.call('GET', '/no/such/path')).status).toBe(404);

    // No key is asked for. The worker counts a job once its settle has committed, so the API can
    // answer a job completed before its end is counted: wait for all five ends.
    const { status, contentType, samples } = await waitFor(
      async () => {
        const scraped = await scrapeMetrics(service.baseUrl);
        const ends = scraped.samples
          .filter((s) => s.name === 'omniscrape_jobs_finished_total' && s.labels.kind === 'async')
          .reduce((sum, s) => sum + s.value, 0);
        return ends === 5 && scraped;
      },
      { what: 'the five async job ends to be counted' },
    );
    expect(status).toBe(200);
    expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');

    const requests = (labels: Record<string, string>) =>
      valueOf(samples, 'omniscrape_http_requests_total', labels);
    expect(requests({ route: '/v1/scrape/async', method: 'POST', status: '202' })).toBe(3);
    expect(requests({ route: '/v1/scrape/batch', method: 'POST', status: '202' })).toBe(1);
    expect(requests({ route: '/v1/scrape', method: 'POST', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(requests({ route: '/v1/jobs/:job_id', method: 'GET', status: '200' })).toBeGreaterThanOrEqual(5);
    // A failed request keeps its route's mount.
    expect(requests({ route: '/v1/jobs/:job_id', method: 'GET', status: '404' })).toBe(1);
    // Answered before any route matched: a refused key, an unknown path.
    expect(requests({ route: '(none)', method: 'GET', status: '401' })).toBe(1);
    expect(requests({ route: '(none)', method: 'GET', status: '404' })).toBe(1);
    expect(
      valueOf(samples, 'omniscrape_http_request_duration_seconds_count', {
        route: '/v1/scrape/async',
        method: 'POST',
      }),
    ).toBe(3);

    expect(valueOf(samples, 'omniscrape_jobs_submitted_total', { kind: 'async' })).toBe(5);
    expect(valueOf(samples, 'omniscrape_jobs_submitted_total', { kind: 'sync' })).toBe(1);
    const finished = (kind: string, status: string, code: string) =>
      valueOf(samples, 'omniscrape_jobs_finished_total', { kind, status, error_code: code });
    expect(finished('async', 'completed', 'none')).toBe(4);
    expect(finished('async', 'failed', 'TARGET_UNREACHABLE')).toBe(1);
    expect(finished('sync', 'completed', 'none')).toBe(1);
    // The same ends by the engine that produced them: every scrape here ran over HTTP.
    const byEngine = (kind: string, engine: string, status: string) =>
      valueOf(samples, 'omniscrape_jobs_finished_by_engine_total', { kind, engine, status });
    expect(byEngine('async', 'http', 'completed')).toBe(4);
    expect(byEngine('async', 'http', 'failed')).toBe(1);
    expect(byEngine('sync', 'http', 'completed')).toBe(1);
    expect(byEngine('async', 'browser', 'completed')).toBeUndefined();
    expect(valueOf(samples, 'omniscrape_job_queue_wait_seconds_count')).toBe(5);
    expect(valueOf(samples, 'omniscrape_job_queue_wait_seconds_bucket', { le: '+Inf' })).toBe(5);
    expect(valueOf(samples, 'omniscrape_job_run_seconds_count', { kind: 'async' })).toBe(5);
    expect(valueOf(samples, 'omniscrape_job_run_seconds_count', { kind: 'sync' })).toBe(1);
    expect(valueOf(samples, 'omniscrape_target_responses_total', { class: '2xx' })).toBe(3);
    expect(valueOf(samples, 'omniscrape_target_responses_total', { class: '4xx' })).toBe(1);
    expect(valueOf(samples, 'omniscrape_target_responses_total', { class: '5xx' })).toBe(1);

    // Read at scrape time: the pools, the LISTEN connections, the queue (every job has ended).
    for (const pool of ['store', 'reporting', 'pgboss'])
      expect(valueOf(samples, 'omniscrape_db_pool_max_connections', { pool })).toBeGreaterThan(0);
    expect(valueOf(samples, 'omniscrape_db_pool_connections', { pool: 'store' })).toBeGreaterThan(0);
    expect(valueOf(samples, 'omniscrape_db_pool_waiting_clients', { pool: 'store' })).toBeGreaterThanOrEqual(
      0,
    );
    expect(valueOf(samples, 'omniscrape_listener_connected', { listener: 'api' })).toBe(1);
    expect(valueOf(samples, 'omniscrape_listener_connected', { listener: 'worker' })).toBe(1);
    expect(valueOf(samples, 'omniscrape_listener_reconnects_total', { listener: 'api' })).toBe(0);
    for (const status of ['queued', 'processing'])
      for (const keyLimit of ['default', 'own'])
        expect(valueOf(samples, 'omniscrape_queue_depth', { status, key_limit: keyLimit })).toBe(0);
    // prom-client's process metrics.
    expect(valueOf(samples, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(valueOf(samples, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);

    expectNothingTenantSpecific(samples);
  });

  test('a result purge run counts the results it deleted', async () => {
    const job = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain?purge=1` });
    await waitForJob(service, job.body.job_id);
    const expired = await service.query(
      `update omniscrape.job_results set expires_at = now() - interval '1 second' returning job_id`,
    );
    const before = valueOf((await scrapeMetrics(service.baseUrl)).samples, 'omniscrape_results_purged_total');
    const { store, logger, metrics } = service.running.context;
    await resultPurge({ db: store.db, logger, metrics }, { cron: '* * * * *', batchSize: 2 }).run(
      new AbortController().signal,
    );
    const after = valueOf((await scrapeMetrics(service.baseUrl)).samples, 'omniscrape_results_purged_total');
    expect(after! - before!).toBe(expired.length);
    expect(expired.length).toBeGreaterThanOrEqual(2);
  });

  test("the browser engine's renders, their durations, Chromium's restarts and the pages in flight are counted, by outcome, trigger and reason", async () => {
    const observer: BrowserObserver = service.running.context.metrics.browserObserver();
    const before = (await scrapeMetrics(service.baseUrl)).samples;
    const renders = (samples: Sample[], outcome: string, trigger: string) =>
      valueOf(samples, 'omniscrape_browser_renders_total', { outcome, trigger });
    for (const outcome of ['success', 'failure'])
      for (const trigger of ['requested', 'auto']) expect(renders(before, outcome, trigger)).toBe(0);
    expect(valueOf(before, 'omniscrape_browser_restarts_total', { reason: 'crashed' })).toBe(0);
    expect(valueOf(before, 'omniscrape_browser_restarts_total', { reason: 'hung' })).toBe(0);
    expect(valueOf(before, 'omniscrape_browser_pages_in_flight')).toBe(0);

    observer.pagesInFlight(2);
    observer.rendered({ ok: true, seconds: 0.8, trigger: 'requested' });
    observer.rendered({ ok: true, seconds: 2.5, trigger: 'auto' });
    observer.rendered({ ok: false, seconds: 45, trigger: 'requested' });
    observer.restarted('crashed');
    observer.restarted('hung');
    observer.restarted('hung');
    const { samples } = await scrapeMetrics(service.baseUrl);
    expect(renders(samples, 'success', 'requested')).toBe(1);
    expect(renders(samples, 'success', 'auto')).toBe(1);
    expect(renders(samples, 'failure', 'requested')).toBe(1);
    expect(renders(samples, 'failure', 'auto')).toBe(0);
    const duration = (le: string) =>
      valueOf(samples, 'omniscrape_browser_render_duration_seconds_bucket', { le });
    expect([duration('1'), duration('3'), duration('30'), duration('60'), duration('+Inf')]).toEqual([
      1, 2, 2, 3, 3,
    ]);
    expect(valueOf(samples, 'omniscrape_browser_render_duration_seconds_sum')).toBeCloseTo(48.3);
    expect(valueOf(samples, 'omniscrape_browser_restarts_total', { reason: 'crashed' })).toBe(1);
    expect(valueOf(samples, 'omniscrape_browser_restarts_total', { reason: 'hung' })).toBe(2);
    expect(valueOf(samples, 'omniscrape_browser_pages_in_flight')).toBe(2);
    observer.pagesInFlight(0);
    expectNothingTenantSpecific(samples);
  });

  test('a killed LISTEN connection of the API is counted as reconnected, and its gauge says it is up again', async () => {
    const listener = () => ({ listener: 'api' });
    await service.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'omniscrape-api-listener'`,
    );
    await waitFor(
      async () =>
        valueOf(
          (await scrapeMetrics(service.baseUrl)).samples,
          'omniscrape_listener_reconnects_total',
          listener(),
        ) === 1,
      { what: 'the reconnect to be counted', timeoutMs: 15_000, intervalMs: 100 },
    );
    const { samples } = await scrapeMetrics(service.baseUrl);
    expect(valueOf(samples, 'omniscrape_listener_connected', listener())).toBe(1);
  });
});

test('queue depth counts queued jobs by key class (own or default concurrency limit), never by key, and a count that cannot finish in time is left out', async () => {
  // No worker: the jobs stay queued.
  const service = await startTestService({ roles: { api: true, worker: false } });
  try {
    await service.query(`update omniscrape.api_keys set concurrency_limit = 3 where name = 'bravo'`);
    for (let i = 0; i < 3; i++)
      expect(
        (await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain?a=${i}` })).status,
      ).toBe(202);
    const batch = await service.call(
      'POST',
      '/v1/scrape/batch',
      { requests: [{ url: `${target.origin}/plain?b=1` }, { url: `${target.origin}/plain?b=2` }] },
      KEY_B,
    );
    expect(batch.status).toBe(202);
    // A count that cannot finish in time (the history locked) leaves the depth out, and says so;
    // the rest of the exposition still answers.
    const locker = new pg.Client({ connectionString: service.databaseUrl });
    await locker.connect();
    try {
      await locker.query('begin');
      await locker.query('lock table omniscrape.scrape_jobs in access exclusive mode');
      const { status, samples } = await scrapeMetrics(service.baseUrl);
      expect(status).toBe(200);
      expect(samples.filter((s) => s.name === 'omniscrape_queue_depth')).toEqual([]);
      expect(valueOf(samples, 'omniscrape_queue_depth_errors_total')).toBe(1);
      expect(valueOf(samples, 'omniscrape_jobs_submitted_total', { kind: 'async' })).toBe(5);
    } finally {
      await locker.query('rollback');
      await locker.end();
    }
    // Counted again once the failed count's few seconds have passed.
    const samples = await waitFor(
      async () => {
        const scraped = (await scrapeMetrics(service.baseUrl)).samples;
        return (
          valueOf(scraped, 'omniscrape_queue_depth', { status: 'queued', key_limit: 'own' }) !== undefined &&
          scraped
        );
      },
      { what: 'the queue depth to be counted again', timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(valueOf(samples, 'omniscrape_queue_depth', { status: 'queued', key_limit: 'default' })).toBe(3);
    expect(valueOf(samples, 'omniscrape_queue_depth', { status: 'queued', key_limit: 'own' })).toBe(2);
    expect(valueOf(samples, 'omniscrape_queue_depth', { status: 'processing', key_limit: 'default' })).toBe(
      0,
    );
    expect(valueOf(samples, 'omniscrape_listener_connected', { listener: 'worker' })).toBeUndefined();
    expectNothingTenantSpecific(samples);
  } finally {
    await service.stop();
  }
});

test('OMNISCRAPE_METRICS_TOKEN: /metrics requires the bearer token, answering 401 in the error shape otherwise', async () => {
  const token = 'metrics-token-0123456789';
  const service = await startTestService({ env: { OMNISCRAPE_METRICS_TOKEN: token } });
  try {
    for (const headers of [
      {},
      { authorization: 'Bearer not-the-token-0123456789' },
      { authorization: `Basic ${token}` },
      { 'x-api-key': KEY_A },
    ]) {
      const res = await fetch(`${service.baseUrl}/metrics`, { headers });
      expect({ headers, status: res.status, body: await res.json() }).toEqual({
        headers,
        status: 401,
        body: { success: false, error: expect.any(String), code: 'UNAUTHORIZED' },
      });
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="omniscrape metrics"');
      expect(res.headers.get('x-request-id')).toMatch(UUID);
    }
    const { status, samples } = await scrapeMetrics(service.baseUrl, { authorization: `Bearer ${token}` });
    expect(status).toBe(200);
    expect(valueOf(samples, 'omniscrape_http_requests_total', { route: '/metrics', status: '401' })).toBe(4);
  } finally {
    await service.stop();
  }
});

describe('OMNISCRAPE_METRICS_PORT: API and worker in separate processes, each with its own metrics port', () => {
  let api: TestService;
  let worker: RoleProcess;
  let workerMetrics: string;
  beforeAll(async () => {
    api = await startTestService({
      roles: { api: true, worker: false },
      env: { OMNISCRAPE_METRICS_PORT: '0' },
    });
    const port = await freePort();
    workerMetrics = `http://127.0.0.1:${port}`;
    worker = startRole(['worker'], {
      DATABASE_URL: api.databaseUrl,
      HOST: '127.0.0.1',
      OMNISCRAPE_METRICS_PORT: String(port),
    });
    await worker.started;
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.stop();
  });

  test("/metrics is served on the metrics port, not the API port; each process counts what happened in it; the worker's log lines for a job carry its request id", async () => {
    expect((await fetch(`${api.baseUrl}/metrics`)).status).toBe(404);
    const apiMetrics = `http://127.0.0.1:${api.running.metricsPort}`;
    const requestId = 'complaint-1234:trace.5678';
    const submitted = await api.call(
      'POST',
      '/v1/scrape/async',
      { url: `${target.origin}/plain?separate=1` },
      KEY_A,
      { 'X-Request-Id': requestId },
    );
    expect(submitted.headers.get('x-request-id')).toBe(requestId);
    await waitForJob(api, submitted.body.job_id);

    const fromApi = (await scrapeMetrics(apiMetrics)).samples;
    expect(valueOf(fromApi, 'omniscrape_jobs_submitted_total', { kind: 'async' })).toBe(1);
    expect(
      valueOf(fromApi, 'omniscrape_jobs_finished_total', { kind: 'async', status: 'completed' }),
    ).toBeUndefined();
    expect(valueOf(fromApi, 'omniscrape_http_requests_total', { route: '/v1/scrape/async' })).toBe(1);

    // The worker counts the job once its settle has committed, so an API answer can come first.
    const { status, samples: fromWorker } = await waitFor(
      async () => {
        const scraped = await scrapeMetrics(workerMetrics);
        const ended = valueOf(scraped.samples, 'omniscrape_jobs_finished_total', { kind: 'async' });
        return ended !== undefined && scraped;
      },
      { what: "the worker's metrics to count the ended job" },
    );
    expect(status).toBe(200);
    expect(valueOf(fromWorker, 'omniscrape_jobs_submitted_total', { kind: 'async' })).toBeUndefined();
    expect(
      valueOf(fromWorker, 'omniscrape_jobs_finished_total', { kind: 'async', status: 'completed' }),
    ).toBe(1);
    expect(valueOf(fromWorker, 'omniscrape_job_queue_wait_seconds_count')).toBe(1);
    expect(valueOf(fromWorker, 'omniscrape_listener_connected', { listener: 'worker' })).toBe(1);
    expect(valueOf(fromWorker, 'omniscrape_db_pool_max_connections', { pool: 'store' })).toBe(10);
    // The metrics port serves nothing else.
    expect((await fetch(`${workerMetrics}/v1/jobs`)).status).toBe(404);

    const linesAboutJob = () =>
      worker
        .output()
        .split('\n')
        .filter((line) => line.includes(submitted.body.job_id))
        .map((line) => JSON.parse(line));
    // The outcome commits just before the worker logs it.
    await waitFor(() => linesAboutJob().some((line) => line.msg === 'scrape job ended'), {
      what: "the worker's line about the job's end",
    });
    for (const line of linesAboutJob()) expect(line.requestId).toBe(requestId);
  });
});

test('a worker whose metrics port is taken stops at once, in one line naming OMNISCRAPE_METRICS_PORT', async () => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const { port } = taken.address() as net.AddressInfo;
  try {
    // Checked before Postgres is reached: the database named here does not exist.
    const run = await runCli(['worker'], {
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
      HOST: '127.0.0.1',
      OMNISCRAPE_METRICS_PORT: String(port),
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `omniscrape: port ${port} is already in use on 127.0.0.1: set OMNISCRAPE_METRICS_PORT to a free port, or stop what listens there\n`,
    );
  } finally {
    await new Promise((resolve) => taken.close(resolve));
  }
});
