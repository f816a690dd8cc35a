import zlib from 'node:zlib';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, waitForJob, type TestService } from './helpers/service';
import { waitFor } from './helpers/wait';
import { startWorkerProcess, type WorkerProcess } from './helpers/worker-process';

const KB = 1024;
const MB = 1024 * KB;
/** A page whose every byte says which page it is, so a mixed-up or truncated result shows. */
const pageOf = (n: number, bytes: number) =>
  `<p>${String(n).padStart(4, '0')}</p>`.repeat(Math.floor(bytes / 11));

let target: TargetServer;
let service: TestService;
/** How much of its body /slow-big has sent so far. */
let slowBigBytesSent = 0;

/**
 * How far above its warmed-up baseline a worker's resident memory may go, from the rules of
 * MemoryBudget rather than from measurements:
 * - bodies held: at most twice the budget plus one body (the oldest scrape's, up to the body cap);
 * - each byte held is in memory up to 4 times at once: the chunks read, their join, the decoded
 *   text, and the driver's message to Postgres;
 * - each scrape in flight buffers a little whether or not it holds budget: 16 KiB in the socket and
 *   16 KiB in the body stream, and its decoder's state (a 32 KiB gzip window; brotli's ring buffer
 *   grows with the output, so with the body held) — 256 KiB is a generous allowance;
 * - garbage: released pages stay in memory until V8 collects them, which it does once external
 *   memory (the Buffers) has grown by 64 MiB, or the young generation (up to 3 × 16 MiB semi-spaces
 *   on 64-bit) fills: 112 MiB.
 */
function rssBoundAbove(budgetBytes: number, maxBodyBytes: number, inFlight: number): number {
  const COPIES_PER_BYTE_HELD = 4;
  const PER_SCRAPE_BYTES = 256 * KB;
  const GARBAGE_BYTES = 64 * MB + 3 * 16 * MB;
  return (
    COPIES_PER_BYTE_HELD * (2 * budgetBytes + maxBodyBytes) + inFlight * PER_SCRAPE_BYTES + GARBAGE_BYTES
  );
}

beforeAll(async () => {
  target = await startTargetServer({
    // Announced length.
    '/big': (_req, res, url) => {
      const body = pageOf(Number(url.searchParams.get('n')), Number(url.searchParams.get('kb') ?? 600) * KB);
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    },
    // A page larger than the budget that takes 4 s to arrive: it holds the whole budget meanwhile.
    '/slow-big': (_req, res) => {
      const body = Buffer.from(pageOf(0, 600 * KB));
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length });
      let sent = 0;
      const timer = setInterval(() => {
        res.write(body.subarray(sent, sent + 60 * KB));
        sent += 60 * KB;
        slowBigBytesSent = sent;
        if (sent >= body.length) {
          clearInterval(timer);
          res.end();
        }
      }, 400);
      res.on('close', () => clearInterval(timer));
    },
    // No length announced (chunked): the reservation grows as the body is read.
    '/chunked': (_req, res, url) => {
      const body = pageOf(Number(url.searchParams.get('n')), 600 * KB);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      for (let i = 0; i < body.length; i += 64 * KB) res.write(body.slice(i, i + 64 * KB));
      res.end();
    },
  });
  // A budget smaller than one page: bodies are read one at a time, each let in alone.
  service = await startTestService({
    env: { OMNISCRAPE_WORKER_BODY_BUDGET_MB: '0.5', OMNISCRAPE_WORKER_CONCURRENCY: '20' },
  });
});

afterAll(async () => {
  await service?.stop();
  await target?.close();
});

describe('worker memory budget', () => {
  test('with more pages in flight than the body budget holds, every job still completes with its own whole page', async () => {
    const urls = Array.from({ length: 30 }, (_, n) => `${target.origin}/${n % 2 ? 'chunked' : 'big'}?n=${n}`);
    const submitted = await Promise.all(urls.map((url) => service.call('POST', '/v1/scrape/async', { url })));
    expect(submitted.every((r) => r.status === 202)).toBe(true);
    const jobs = await Promise.all(
      submitted.map((r) => waitForJob(service, r.body.job_id, undefined, 60_000)),
    );
    jobs.forEach((job, n) => {
      expect(job.status).toBe('completed');
      expect(job.result.data.content).toBe(pageOf(n, 600 * KB));
    });
  }, 90_000);

  test('a slow page holding the whole budget delays other scrapes but never makes them time out', async () => {
    const slow = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/slow-big` });
    await waitFor(() => slowBigBytesSent > 0, { what: 'the slow page to be sending its body' }); // the budget is spent
    // A small page: within twice the budget, so it is let in past the budget rather than time out.
    const quick = await service.call('POST', '/v1/scrape/async', {
      url: `${target.origin}/big?n=7&kb=100`,
      timeout: 2,
    });
    const job = await waitForJob(service, quick.body.job_id, undefined, 10_000);
    expect(job).toMatchObject({ status: 'completed' });
    expect(job.result.data.content).toBe(pageOf(7, 100 * KB));
    expect((await waitForJob(service, slow.body.job_id, undefined, 20_000)).status).toBe('completed');
  }, 30_000);
});

/**
 * The worker's peak memory with many chunked and compressed pages in flight at once, the worker in
 * its own process so that its VmHWM is its own. Every page arrives without an announced decoded
 * size (chunked, or a Content-Length that counts compressed bytes), so each enters the budget
 * cheaply and grows as it is read: a budget that counted only announced sizes would not bound it.
 */
describe('worker memory with chunked and compressed pages', () => {
  const IN_FLIGHT = 64;
  const PAGE_BYTES = 3 * MB;
  const BUDGET_MB = 2;
  const MAX_BODY_BYTES = 4 * MB;
  const KINDS = ['gzip', 'br', 'gzip-length', 'identity'] as const;
  const compressed = new Map<string, Buffer>();
  const bodyOf = (kind: (typeof KINDS)[number], n: number): Buffer => {
    const key = `${kind}:${n}`;
    let body = compressed.get(key);
    if (!body) {
      const page = Buffer.from(pageOf(n, PAGE_BYTES));
      if (kind === 'br')
        body = zlib.brotliCompressSync(page, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } });
      else if (kind === 'identity') body = page;
      else body = zlib.gzipSync(page);
      compressed.set(key, body);
    }
    return body;
  };

  let api: TestService;
  let heldTarget: TargetServer;
  let worker: WorkerProcess | undefined;
  // Every page waits until all of them have been asked for, so all are in flight at once.
  let asked = 0;
  let allAsked!: () => void;
  const everyPageAsked = new Promise<void>((resolve) => (allAsked = resolve));

  beforeAll(async () => {
    heldTarget = await startTargetServer({
      '/held': async (_req, res, url) => {
        const kind = url.searchParams.get('kind') as (typeof KINDS)[number];
        const n = Number(url.searchParams.get('n'));
        const body = bodyOf(kind, n);
        if (++asked === IN_FLIGHT) allAsked();
        await everyPageAsked;
        const headers: Record<string, string | number> = { 'content-type': 'text/html; charset=utf-8' };
        if (kind === 'gzip' || kind === 'gzip-length') headers['content-encoding'] = 'gzip';
        if (kind === 'br') headers['content-encoding'] = 'br';
        if (kind === 'gzip-length') headers['content-length'] = body.length;
        res.writeHead(200, headers);
        for (let i = 0; i < body.length; i += 64 * KB) res.write(body.subarray(i, i + 64 * KB));
        res.end();
      },
    });
    api = await startTestService({ roles: { api: true, worker: false } });
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.stop();
    await heldTarget?.close();
  });

  test(`with ${IN_FLIGHT} chunked, gzip and brotli pages in flight, the worker's peak RSS stays within what the budget allows`, async () => {
    worker = startWorkerProcess(api.databaseUrl, {
      OMNISCRAPE_WORKER_CONCURRENCY: String(IN_FLIGHT),
      OMNISCRAPE_DEFAULT_CONCURRENCY: String(IN_FLIGHT), // the key's limit must not hold pages back
      OMNISCRAPE_WORKER_BODY_BUDGET_MB: String(BUDGET_MB),
      OMNISCRAPE_MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    });
    // Warm up (code loaded, pools open, a few small results stored): the baseline of the bound.
    const warmUp = await Promise.all(
      Array.from({ length: 8 }, () =>
        api.call('POST', '/v1/scrape/async', { url: `${heldTarget.origin}/page` }),
      ),
    );
    for (const r of warmUp)
      expect((await waitForJob(api, r.body.job_id, undefined, 60_000)).status).toBe('completed');
    const baseline = worker.peakRssBytes();

    const pages = Array.from({ length: IN_FLIGHT }, (_, n) => ({ n, kind: KINDS[n % KINDS.length]! }));
    const submitted = await Promise.all(
      pages.map(({ n, kind }) =>
        api.call('POST', '/v1/scrape/async', {
          url: `${heldTarget.origin}/held?kind=${kind}&n=${n}`,
          timeout: 120,
        }),
      ),
    );
    for (const [i, r] of submitted.entries()) {
      expect(r.status).toBe(202);
      const job = await waitForJob(api, r.body.job_id, undefined, 120_000);
      expect(job.status).toBe('completed');
      expect(job.result.data.content === pageOf(pages[i]!.n, PAGE_BYTES)).toBe(true);
    }
    const peak = worker.peakRssBytes();
    const bound = baseline + rssBoundAbove(BUDGET_MB * MB, MAX_BODY_BYTES, IN_FLIGHT);
    // Figures for docs/reliability.md.
    console.log(
      `[reliability] chunked/compressed pages: peak worker RSS ${(peak / MB).toFixed(0)} MB with ${IN_FLIGHT} pages of ` +
        `${PAGE_BYTES / MB} MiB in flight (budget ${BUDGET_MB} MiB; baseline ${(baseline / MB).toFixed(0)} MB, bound ${(bound / MB).toFixed(0)} MB)`,
    );
    expect(peak).toBeLessThanOrEqual(bound);
  }, 240_000);
});
