import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { OmniscrapeClient, OmniscrapeError, ScrapeManyAbortedError, screenshotPng } from '../src/client';
import { generateApiKey, insertApiKey } from '../src/db/api-keys';
import { KEY_A, KEY_B, useServiceAndTarget } from './helpers/service';
import { waitFor } from './helpers/wait';

const env = useServiceAndTarget();
const client = (key = KEY_A) => new OmniscrapeClient({ baseUrl: env.service.baseUrl, apiKey: key });

/** A proxy to the service that answers the first `failures` requests 503 with Retry-After: 1. */
async function flakyProxy(failures: number): Promise<{ url: string; seen: () => number; close: () => void }> {
  let seen = 0;
  const server = http.createServer((req, res) => {
    seen++;
    if (seen <= failures) {
      res.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' });
      res.end(JSON.stringify({ success: false, error: 'Try again.', code: 'QUEUE_UNAVAILABLE' }));
      return;
    }
    const upstream = http.request(
      new URL(req.url!, env.service.baseUrl),
      { method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode!, up.headers);
        up.pipe(res);
      },
    );
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen: () => seen, close: () => server.close() };
}

/**
 * A proxy to the service that records each answer's status by `METHOD /path`, and drops the first
 * `dropFirst` connections without an answer (a gateway restarting).
 */
async function countingProxy({ dropFirst = 0 } = {}) {
  const seen = new Map<string, number[]>();
  let dropped = 0;
  const server = http.createServer((req, res) => {
    if (dropped < dropFirst) {
      dropped++;
      req.socket.destroy();
      return;
    }
    const route = `${req.method} ${new URL(req.url!, 'http://x').pathname}`;
    const upstream = http.request(
      new URL(req.url!, env.service.baseUrl),
      { method: req.method, headers: req.headers },
      (up) => {
        seen.set(route, [...(seen.get(route) ?? []), up.statusCode!]);
        res.writeHead(up.statusCode!, up.headers);
        up.pipe(res);
      },
    );
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    statuses: (route: string) => seen.get(route) ?? [],
    dropped: () => dropped,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe('OmniscrapeClient', () => {
  test('scrape answers the page', async () => {
    const result = await client().scrape({ url: `${env.target.origin}/page`, format: 'markdown' });
    expect(result.success).toBe(true);
    if (!result.success) throw new Error('unreachable');
    expect(result.data.status_code).toBe(200);
    expect(result.data.content).toContain('Sample page');
  });

  test('submit then waitForJob resolves with the completed job; the idempotency key answers the same job', async () => {
    const key = randomUUID();
    const accepted = await client().submit({ url: `${env.target.origin}/page` }, { idempotencyKey: key });
    const again = await client().submit({ url: `${env.target.origin}/page` }, { idempotencyKey: key });
    expect(again.job_id).toBe(accepted.job_id);
    const done = await client().waitForJob(accepted.job_id, { timeoutMs: 30_000 });
    expect(done).toMatchObject({ job_id: accepted.job_id, status: 'completed' });
    expect(done.result?.data.status_code).toBe(200);
    expect(await client().getJob(accepted.job_id)).toEqual(done);
  });

  test('submitBatch queues every item, in order', async () => {
    const urls = [`${env.target.origin}/page?b=1`, `${env.target.origin}/page?b=2`];
    const batch = await client().submitBatch(urls.map((url) => ({ url })));
    expect(batch.job_ids).toHaveLength(2);
    const jobs = await Promise.all(batch.job_ids.map((id) => client().waitForJob(id, { timeoutMs: 30_000 })));
    expect(jobs.map((j) => [j.url, j.status])).toEqual(urls.map((url) => [url, 'completed']));
  });

  test('cancel cancels a queued job and refuses a processing one with its status', async () => {
    const name = `client-cancel-${randomUUID()}`;
    // A key that runs two scrapes at once: with both taken by the blockers, the third stays queued.
    const key = generateApiKey();
    await insertApiKey(env.service.running.context.store.db, name, key, { concurrency: 2 });
    const b = client(key);
    const blockers = [
      await b.submit({ url: `${env.target.origin}/held?name=${name}` }),
      await b.submit({ url: `${env.target.origin}/held?name=${name}` }),
    ];
    await waitFor(() => env.target.held(name) === 2, { what: 'both blockers to reach the target' });
    const queued = await b.submit({ url: `${env.target.origin}/page?cancel=1` });
    expect(await b.cancel(queued.job_id)).toMatchObject({ job_id: queued.job_id, status: 'cancelled' });

    const refused = await b.cancel(blockers[0]!.job_id).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OmniscrapeError);
    expect(refused).toMatchObject({ status: 409, code: 'JOB_NOT_CANCELLABLE', jobStatus: 'processing' });
    env.target.release(name);
    await Promise.all(blockers.map((j) => b.waitForJob(j.job_id, { timeoutMs: 30_000 })));
  });

  test('listJobs follows the cursor page after page', async () => {
    const pages: string[][] = [];
    for await (const page of client().listJobs({ limit: '2' })) {
      pages.push(page.map((j) => j.job_id));
      if (pages.length === 2) break;
    }
    expect(pages).toHaveLength(2);
    expect(pages[0]).toHaveLength(2);
    expect(pages[1]!.length).toBeGreaterThan(0);
    expect(pages[1]!.some((id) => pages[0]!.includes(id))).toBe(false);
  });

  test('listJobs takes typed filters: statuses as a list, times as Dates, the limit as a number', async () => {
    const since = new Date();
    const key = generateApiKey();
    await insertApiKey(env.service.running.context.store.db, `client-list-${randomUUID()}`, key);
    const c = client(key);
    const done = await c.submit({ url: `${env.target.origin}/plain` });
    const failed = await c.submit({ url: 'http://127.0.0.1:1/closed' });
    await Promise.all([done, failed].map((j) => c.waitForJob(j.job_id, { timeoutMs: 30_000 })));
    const seen = async (query: Parameters<OmniscrapeClient['listJobs']>[0]) => {
      const ids: string[] = [];
      for await (const page of c.listJobs(query)) ids.push(...page.map((j) => j.job_id));
      return ids;
    };
    expect(await seen({ status: ['failed', 'timed_out'], since, limit: 1 })).toEqual([failed.job_id]);
    expect((await seen({ status: 'completed,failed', limit: 1 })).sort()).toEqual(
      [done.job_id, failed.job_id].sort(),
    );
    expect(await seen({ until: since })).toEqual([]);
  });

  test('a refusal is an OmniscrapeError carrying the status and code', async () => {
    const error = await client()
      .getJob(randomUUID())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OmniscrapeError);
    expect(error).toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
    const unauthorized = await client('no-such-key')
      .getJob(randomUUID())
      .catch((e: unknown) => e);
    expect(unauthorized).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
  });

  test('the rendering fields are typed and sent; the rules across them come back as a 400 naming the field', async () => {
    const refused = await client()
      .submit({ url: `${env.target.origin}/page`, mode: 'http', js_rendering: true, wait_for: '#app' })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 400, code: 'INVALID_REQUEST' });
    expect((refused as Error).message).toMatch(/js_rendering: /);
    const fullPage = await client()
      .scrape({
        url: `${env.target.origin}/page`,
        mode: 'browser',
        wait_for: 100,
        screenshot_full_page: true,
      })
      .catch((e: unknown) => e);
    expect((fullPage as Error).message).toMatch(/screenshot_full_page: needs screenshot: true/);
  });

  test('screenshotPng decodes data.screenshot; a failure or an answer without one has none', () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const page = {
      success: true as const,
      data: { content: '', status_code: 200, headers: {}, final_url: 'https://example.com/' },
      metadata: { elapsed_time: 1, engine: 'browser' as const },
      billing: { charged: 1 },
    };
    expect(screenshotPng({ ...page, data: { ...page.data, screenshot: png.toString('base64') } })).toEqual(
      png,
    );
    expect(screenshotPng(page)).toBeUndefined();
    expect(screenshotPng(undefined)).toBeUndefined();
    expect(
      screenshotPng({
        success: false,
        error: 'gone',
        code: 'TARGET_TIMEOUT',
        metadata: { elapsed_time: 1 },
        billing: { charged: 0 },
      }),
    ).toBeUndefined();
  });

  test('waitForJob holds on a processing job until it ends', async () => {
    const name = `client-wait-${randomUUID()}`;
    const { job_id } = await client().submit({ url: `${env.target.origin}/held?name=${name}` });
    await waitFor(() => env.target.held(name) === 1, { what: 'the job to reach the target' });
    const waiting = client().waitForJob(job_id, { timeoutMs: 30_000 });
    await waitFor(() => env.service.running.context.jobWatchers.size > 0, { what: 'the client to wait' });
    env.target.release(name);
    expect(await waiting).toMatchObject({ job_id, status: 'completed' });
  });

  test('scrapeMany submits in batches and yields every job once it ended, reporting progress', async () => {
    const urls = [1, 2, 3, 4, 5].map((n) => `${env.target.origin}/page?many=${n}`);
    const progress: Array<{ done: number; failed: number; total: number }> = [];
    const jobs = [];
    for await (const job of client().scrapeMany(urls, {
      concurrency: 2,
      batchSize: 2,
      onProgress: (p) => progress.push(p),
    })) {
      jobs.push(job);
    }
    expect(jobs.map((j) => j.url).sort()).toEqual(urls);
    expect(jobs.every((j) => j.status === 'completed')).toBe(true);
    expect(progress.at(-1)).toEqual({ total: 5, done: 5, failed: 0 });
  });

  test('an aborted scrapeMany cancels the jobs still queued and says what it left', async () => {
    const name = `client-abort-${randomUUID()}`;
    const urls = Array.from({ length: 40 }, (_, i) => `${env.target.origin}/held?name=${name}&i=${i}`);
    const stop = new AbortController();
    const ended: unknown[] = [];
    const run = (async () => {
      for await (const job of client(KEY_B).scrapeMany(urls, { batchSize: 20, signal: stop.signal }))
        ended.push(job);
    })().catch((error: unknown) => error);
    // Both batches submitted (two at most are in flight), and the first jobs at the target.
    const jobsOf = (like: string) =>
      env.service.query(`select count(*)::int as n from omniscrape.scrape_jobs where url like $1`, [like]);
    await waitFor(async () => (await jobsOf(`%name=${name}&%`))[0].n === 40 && env.target.held(name) > 0, {
      what: 'both batches to be queued and the first jobs to reach the target',
    });
    stop.abort();
    const error = await run;
    env.target.release(name);
    expect(error).toBeInstanceOf(ScrapeManyAbortedError);
    const { cancelled, notCancelled, unknown } = error as ScrapeManyAbortedError;
    expect(unknown).toBe(0);
    // Both batches were in flight (two at most), none had ended: each job is counted once.
    expect(ended).toHaveLength(0);
    expect(cancelled + notCancelled).toBe(40);
    expect(cancelled).toBeGreaterThan(0);
    const rows = await env.service.query(
      `select status, count(*)::int as n from omniscrape.scrape_jobs where url like $1 group by status`,
      [`%name=${name}&%`],
    );
    expect(rows.find((r) => r.status === 'cancelled')?.n).toBe(cancelled);
  });

  test("scrapeMany sends smaller batches, later, when the key's queued-jobs limit refuses one", async () => {
    const name = `client-room-${randomUUID()}`;
    const key = generateApiKey();
    await insertApiKey(env.service.running.context.store.db, name, key, { concurrency: 5, maxQueued: 12 });
    const proxy = await countingProxy();
    try {
      const c = new OmniscrapeClient({ baseUrl: proxy.url, apiKey: key });
      const urls = Array.from({ length: 30 }, (_, i) => `${env.target.origin}/held?name=${name}&i=${i}`);
      const run = (async () => {
        const jobs = [];
        for await (const job of c.scrapeMany(urls, { batchSize: 10, concurrency: 5 })) jobs.push(job);
        return jobs;
      })();
      // 5 queued behind the 5 at the target: a second batch of 10 would make 15.
      await waitFor(() => proxy.statuses('POST /v1/scrape/batch').includes(429), {
        what: () => `a refused batch, saw ${JSON.stringify(proxy.statuses('POST /v1/scrape/batch'))}`,
      });
      env.target.release(name);
      const jobs = await run;
      expect(jobs.map((j) => j.url).sort()).toEqual([...urls].sort());
      expect(jobs.every((j) => j.status === 'completed')).toBe(true);
    } finally {
      env.target.release(name);
      proxy.close();
    }
  });

  test('leaving a scrapeMany loop early ends its waits and cancels the jobs still queued', async () => {
    const name = `client-break-${randomUUID()}`;
    const key = generateApiKey();
    await insertApiKey(env.service.running.context.store.db, name, key, { concurrency: 2 });
    // Each job is held by the target until its own 1 s timeout: the first to end ends the loop.
    const requests = Array.from({ length: 11 }, (_, i) => ({
      url: `${env.target.origin}/held?name=${name}&i=${i}`,
      timeout: 1,
    }));
    for await (const job of client(key).scrapeMany(requests, { concurrency: 3 })) {
      expect(job.status).toBe('timed_out');
      break;
    }
    const rows = await env.service.query(
      `select status, count(*)::int as n from omniscrape.scrape_jobs where url like $1 group by status`,
      [`%name=${name}&%`],
    );
    const n = (status: string) => rows.find((r) => r.status === status)?.n ?? 0;
    expect(n('queued')).toBe(0);
    expect(n('cancelled')).toBeGreaterThan(0);
    expect(n('cancelled') + n('processing') + n('timed_out')).toBe(11);
    await waitFor(() => env.service.running.context.jobWatchers.size === 0, {
      what: 'the held waits to end',
    });
    env.target.release(name);
  });

  test('waitForJob rides over a gateway that drops its connections for a while', async () => {
    const proxy = await countingProxy({ dropFirst: 3 });
    try {
      const { job_id } = await client().submit({ url: `${env.target.origin}/plain` });
      const c = new OmniscrapeClient({ baseUrl: proxy.url, apiKey: KEY_A });
      expect(await c.waitForJob(job_id, { timeoutMs: 30_000 })).toMatchObject({
        job_id,
        status: 'completed',
      });
      expect(proxy.dropped()).toBe(3);
    } finally {
      proxy.close();
    }
    // The outage is bounded: past `outageMs` the network error is thrown.
    const away = await countingProxy({ dropFirst: 1 });
    try {
      const c = new OmniscrapeClient({ baseUrl: away.url, apiKey: KEY_A });
      const error = await c.waitForJob(randomUUID(), { outageMs: 0 }).catch((e: unknown) => e);
      expect(error).toMatchObject({ status: 0, code: 'NETWORK_ERROR' });
    } finally {
      away.close();
    }
  });

  test('a 503 with Retry-After is retried after it, then succeeds', async () => {
    const proxy = await flakyProxy(1);
    try {
      const c = new OmniscrapeClient({ baseUrl: proxy.url, apiKey: KEY_A });
      const began = Date.now();
      const result = await c.scrape({ url: `${env.target.origin}/page` });
      expect(result.success).toBe(true);
      expect(proxy.seen()).toBe(2);
      expect(Date.now() - began).toBeGreaterThanOrEqual(900);
    } finally {
      proxy.close();
    }
  });

  test('the retry budget runs out: the last 503 is thrown', async () => {
    const proxy = await flakyProxy(10);
    try {
      const c = new OmniscrapeClient({ baseUrl: proxy.url, apiKey: KEY_A, retries: 1 });
      const error = await c.getJob(randomUUID()).catch((e: unknown) => e);
      expect(error).toMatchObject({ status: 503, code: 'QUEUE_UNAVAILABLE' });
      expect(proxy.seen()).toBe(2);
    } finally {
      proxy.close();
    }
  });
});
