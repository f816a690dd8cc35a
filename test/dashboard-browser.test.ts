import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { insertApiKey } from '../src/db/api-keys';
import { launchChromium } from './helpers/chromium';
import { startTestService, type TestService } from './helpers/service';
import { waitFor } from './helpers/wait';

// The operator page in a real browser (Debian's Chromium, headless): signed in through its form,
// on a database seeded with jobs of several keys, hosts and statuses at known times, every figure
// it shows must equal what SQL over the reporting views says. The screenshot is kept as an artifact.
export const SCREENSHOT = path.resolve(__dirname, '../test-artifacts/dashboard.png');

const ADMIN_KEY = `osk_admin-${randomUUID()}`;
const HOSTS = ['fast.example', 'slow.example', 'flaky.example', 'down.example'] as const;

let service: TestService;
let browser: Browser;
let context: BrowserContext;
let page: Page;
/** The range the page is opened on: the hour of seeded jobs, to the minute. */
let from: Date;
let to: Date;
const consoleErrors: string[] = [];

/** One seeded job: its key, host and status, and when it was created, started and finished. */
interface SeedJob {
  key: 'alpha' | 'bravo';
  host: string;
  status: string;
  created: Date;
  queueMs: number | null;
  runMs: number | null;
  errorCode: string | null;
  statusCode: number | null;
}

/** The engine a seeded job's outcome came from: the slow host's pages were rendered; no scrape, none. */
const engineOf = (job: SeedJob) =>
  ['completed', 'failed', 'timed_out'].includes(job.status)
    ? job.host === 'slow.example'
      ? 'browser'
      : 'http'
    : null;

/** 72 jobs over 50 minutes from `base`: a fast, a slow, a flaky and a down host, and a few unfinished. */
function seedJobs(base: Date): SeedJob[] {
  return Array.from({ length: 72 }, (_, i): SeedJob => {
    const host = HOSTS[i % 4]!;
    const created = new Date(base.getTime() + Math.floor((i * 50) / 72) * 60_000 + (i % 7) * 3_000);
    const job = { key: i % 3 === 0 ? 'bravo' : 'alpha', host, created, statusCode: 200 } as const;
    const queueMs = 150 + ((i * 37) % 400);
    if (i >= 66)
      return {
        ...job,
        status: i % 2 ? 'queued' : 'processing',
        queueMs: i % 2 ? null : queueMs,
        runMs: null,
        errorCode: null,
        statusCode: null,
      };
    if (host === 'fast.example')
      return { ...job, status: 'completed', queueMs, runMs: 200 + i * 7, errorCode: null };
    if (host === 'slow.example')
      return i % 3 === 0
        ? {
            ...job,
            status: 'timed_out',
            queueMs,
            runMs: 30_000,
            errorCode: 'TARGET_TIMEOUT',
            statusCode: null,
          }
        : { ...job, status: 'completed', queueMs, runMs: 4_000 + i * 90, errorCode: null };
    if (host === 'flaky.example')
      return i % 8 === 2
        ? {
            ...job,
            status: 'failed',
            queueMs,
            runMs: 800 + i,
            errorCode: 'TARGET_HTTP_ERROR',
            statusCode: 503,
          }
        : { ...job, status: 'completed', queueMs, runMs: 700 + i * 3, errorCode: null };
    return i % 5 === 3
      ? { ...job, status: 'cancelled', queueMs: null, runMs: null, errorCode: null, statusCode: null }
      : {
          ...job,
          status: 'failed',
          queueMs,
          runMs: 1_000 + i,
          errorCode: 'TARGET_UNREACHABLE',
          statusCode: null,
        };
  });
}

async function insertJob(job: SeedJob): Promise<void> {
  const started = job.queueMs === null ? null : new Date(job.created.getTime() + job.queueMs);
  const finished = started && job.runMs !== null ? new Date(started.getTime() + job.runMs) : null;
  await service.query(
    `insert into omniscrape.scrape_jobs
       (id, api_key_id, kind, url, host, method, format, timeout_seconds, status, target_status_code,
        error_code, attempts, charged, created_at, started_at, finished_at, updated_at, engine)
     select $1, id, 'async', $3, $4, 'GET', 'html', 30, $5, $6, $7, $8, $9,
            $10::timestamptz, $11::timestamptz, $12::timestamptz, coalesce($12, $11, $10), $13
       from omniscrape.api_keys where name = $2`,
    [
      randomUUID(),
      job.key,
      `https://${job.host}/page/${job.created.getTime()}`,
      job.host,
      job.status,
      job.statusCode,
      job.errorCode,
      started ? 1 : 0,
      job.status === 'completed' ? 0.0035 : 0,
      job.created,
      started,
      finished,
      engineOf(job),
    ],
  );
}

/** The text of every cell of a table's body, row by row. */
const tableText = (id: string) =>
  page.$$eval(`#${id} tbody tr`, (rows) =>
    rows.map((row) => Array.from(row.querySelectorAll('td'), (td: any) => (td.textContent as string) ?? '')),
  );
const figure = async (name: string) => page.textContent(`[data-figure="${name}"]`);
/** As the page writes numbers: whole, with thousands separators; a dash for none. */
const shown = (n: number | null) => (n === null ? '–' : Math.round(n).toLocaleString('en-US'));
const shownPercent = (rate: number | null) => (rate === null ? '–' : `${(rate * 100).toFixed(1)}%`);

beforeAll(async () => {
  service = await startTestService({ roles: { api: true, worker: false } });
  await insertApiKey(service.running.context.store.db, 'ops', ADMIN_KEY, { admin: true });
  const minute = Math.floor(Date.now() / 60_000) * 60_000;
  from = new Date(minute - 55 * 60_000);
  to = new Date(minute + 5 * 60_000);
  for (const job of seedJobs(new Date(from.getTime() + 60_000))) await insertJob(job);

  browser = await launchChromium();
  context = await browser.newContext({ baseURL: service.baseUrl, viewport: { width: 1400, height: 1000 } });
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(err.message));
});
afterAll(async () => {
  await browser?.close();
  await service?.stop();
});

describe('the dashboard in Chromium', () => {
  test('a browser without a session lands on the sign-in form; the key, posted once, signs it in with an HttpOnly, SameSite=Strict cookie', async () => {
    await page.goto('/dashboard');
    expect(new URL(page.url()).pathname).toBe('/dashboard/sign-in');
    await page.fill('#key', ADMIN_KEY);
    await Promise.all([
      page.waitForURL((url) => url.pathname === '/dashboard'),
      page.click('button[type=submit]'),
    ]);
    const cookies = await context.cookies();
    expect(cookies).toEqual([
      expect.objectContaining({
        name: 'omniscrape_dashboard',
        path: '/dashboard',
        httpOnly: true,
        sameSite: 'Strict',
      }),
    ]);
    expect(await page.content()).not.toContain(ADMIN_KEY);
  });

  test('opened on a range, it shows its figures once its data has loaded', async () => {
    await page.goto(`/dashboard?from=${from.toISOString()}&to=${to.toISOString()}`);
    await page.waitForFunction(() => Number((globalThis as any).document.body.dataset.refreshes) >= 1);
    expect(await page.textContent('#status')).toMatch(/^updated /);
  });

  test('submit→start and start→finish percentiles are those of the jobs created in the range', async () => {
    const [row] = await service.query(
      `select percentile_cont(array[0.5, 0.95, 0.99]) within group (order by queue_ms) as queue_ms,
              percentile_cont(array[0.5, 0.95, 0.99]) within group (order by run_ms) as run_ms
         from omniscrape_reporting.job_history where created_at >= $1 and created_at < $2`,
      [from, to],
    );
    for (const name of ['queue_ms', 'run_ms']) {
      const [p50, p95, p99] = row[name] as number[];
      expect([await figure(`${name}-p50`), await figure(`${name}-p95`), await figure(`${name}-p99`)]).toEqual(
        [shown(p50!), shown(p95!), shown(p99!)],
      );
    }
  });

  test('the scrapes rendered in the browser and fetched over HTTP are those job_history counts by engine in the range', async () => {
    const [row] = await service.query(
      `select count(*) filter (where engine = 'browser')::int as rendered,
              count(*) filter (where engine = 'http')::int as fetched
         from omniscrape_reporting.job_history where created_at >= $1 and created_at < $2`,
      [from, to],
    );
    expect(row.rendered).toBeGreaterThan(0);
    expect([await figure('rendered'), await figure('fetched')]).toEqual([
      shown(row.rendered),
      shown(row.fetched),
    ]);
  });

  test('the queue depth is the number of queued and processing jobs now', async () => {
    const [row] = await service.query(
      `select count(*) filter (where status = 'queued')::int as queued,
              count(*) filter (where status = 'processing')::int as processing
         from omniscrape_reporting.job_history`,
    );
    expect(row.queued).toBeGreaterThan(0);
    expect([await figure('queued'), await figure('processing')]).toEqual([
      shown(row.queued),
      shown(row.processing),
    ]);
  });

  test('the slowest and the most failing hosts are those of host_health', async () => {
    const slowest = await service.query(
      `select host, jobs, p95_run_ms, success_rate from omniscrape_reporting.host_health
        where p95_run_ms is not null order by p95_run_ms desc, host limit 10`,
    );
    expect(slowest[0].host).toBe('slow.example');
    expect(await tableText('slowest-hosts')).toEqual(
      slowest.map((h) => [h.host, shown(Number(h.jobs)), shown(h.p95_run_ms), shownPercent(h.success_rate)]),
    );
    const failing = await service.query(
      `select host, jobs, success_rate, top_error_code from omniscrape_reporting.host_health
        where success_rate < 1 order by success_rate, jobs desc, host limit 10`,
    );
    expect(failing[0].host).toBe('down.example');
    const rows = await tableText('failing-hosts');
    expect(rows.map((r) => r.slice(0, 4))).toEqual(
      failing.map((h) => [
        h.host,
        shown(Number(h.jobs)),
        shownPercent(h.success_rate),
        h.top_error_code ?? '–',
      ]),
    );
  });

  test('usage per key is the sum of daily_usage over the days of the range', async () => {
    const usage = await service.query(
      `select api_key_name, sum(jobs)::int as jobs, sum(completed)::int as completed, sum(failed)::int as failed,
              sum(timed_out)::int as timed_out, sum(cancelled)::int as cancelled, sum(charged)::float8 as charged
         from omniscrape_reporting.daily_usage
        where day between ($1::timestamptz at time zone 'UTC')::date and ($2::timestamptz at time zone 'UTC')::date
        group by 1 order by 2 desc, 1`,
      [from, new Date(to.getTime() - 1)],
    );
    expect(usage.map((u) => u.api_key_name)).toEqual(['alpha', 'bravo']);
    expect(await tableText('usage')).toEqual(
      usage.map((u) => [
        u.api_key_name,
        ...[u.jobs, u.completed, u.failed, u.timed_out, u.cancelled].map(shown),
        u.charged.toFixed(4),
      ]),
    );
  });

  test('the latest failures are listed newest first, with their codes', async () => {
    const failures = await service.query(
      `select api_key_name, host, status, error_code, status_code from omniscrape_reporting.job_history
        where status in ('failed', 'timed_out') and created_at >= $1 and created_at < $2
        order by created_at desc, job_id limit 20`,
      [from, to],
    );
    expect(failures.length).toBe(20);
    const rows = await tableText('failures');
    expect(rows.map((r) => r.slice(1, 6))).toEqual(
      failures.map((f) => [
        f.api_key_name,
        f.host,
        f.status,
        f.error_code,
        f.status_code === null ? '–' : String(f.status_code),
      ]),
    );
  });

  test('the chart draws the jobs per minute by status that job_history counts', async () => {
    const perMinute = await service.query(
      `select to_char(date_trunc('minute', created_at) at time zone 'UTC', 'HH24:MI') as minute, status, count(*)::int as jobs
         from omniscrape_reporting.job_history where created_at >= $1 and created_at < $2 group by 1, 2`,
      [from, to],
    );
    const chart = await page.evaluate(() => {
      const drawn = (globalThis as any).Chart.getChart('jobs-chart');
      return {
        labels: drawn.data.labels as string[],
        datasets: (drawn.data.datasets as any[]).map((d) => ({
          label: d.label as string,
          data: d.data as number[],
        })),
      };
    });
    expect(chart.labels).toHaveLength(60);
    const drawnCounts = chart.datasets.flatMap((d) =>
      d.data.flatMap((jobs, i) => (jobs > 0 ? [{ minute: chart.labels[i], status: d.label, jobs }] : [])),
    );
    const byKey = (a: { minute?: string; status?: string }) => `${a.minute} ${a.status}`;
    expect(drawnCounts.sort((a, b) => byKey(a).localeCompare(byKey(b)))).toEqual(
      perMinute.sort((a, b) => byKey(a).localeCompare(byKey(b))),
    );
    // And it is on the canvas: bars of the completed jobs' colour (#2e9e5b) were painted.
    const painted = await page.$eval('#jobs-chart', (canvas: any) => {
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      let green = 0;
      for (let i = 0; i < data.length; i += 4)
        if (data[i] === 0x2e && data[i + 1] === 0x9e && data[i + 2] === 0x5b) green++;
      return green;
    });
    expect(painted).toBeGreaterThan(100);
  });

  test('it refreshes itself: a job queued meanwhile appears in the queue depth', async () => {
    const before = Number(await figure('queued'));
    await insertJob({
      key: 'alpha',
      host: 'fast.example',
      status: 'queued',
      created: new Date(),
      queueMs: null,
      runMs: null,
      errorCode: null,
      statusCode: null,
    });
    await waitFor(async () => Number(await figure('queued')) === before + 1, {
      what: 'the page to show one more queued job',
      timeoutMs: 30_000,
      intervalMs: 250,
    });
  });

  test('nothing was refused by the Content-Security-Policy, nor failed, and the screenshot is kept', async () => {
    expect(consoleErrors).toEqual([]);
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(fs.statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
  });

  test('Sign out ends the session: the browser is back at the sign-in form and the page is closed to it', async () => {
    await Promise.all([
      page.waitForURL((url) => url.pathname === '/dashboard/sign-in'),
      page.click('form[action="/dashboard/sign-out"] button'),
    ]);
    expect(await context.cookies()).toEqual([]);
    await page.goto('/dashboard');
    expect(new URL(page.url()).pathname).toBe('/dashboard/sign-in');
  });
});
