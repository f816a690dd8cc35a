import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, waitForJob, type TestService } from './helpers/service';

const KB = 1024;
/** A page whose every byte says which page it is, so a mixed-up or truncated result shows. */
const pageOf = (n: number, bytes: number) => `<p>${String(n).padStart(4, '0')}</p>`.repeat(Math.floor(bytes / 11));

let target: TargetServer;
let service: TestService;

beforeAll(async () => {
  target = await startTargetServer({
    // Announced length.
    '/big': (_req, res, url) => {
      const body = pageOf(Number(url.searchParams.get('n')), Number(url.searchParams.get('kb') ?? 600) * KB);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) });
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
  service = await startTestService({ env: { OMNISCRAPE_WORKER_BODY_BUDGET_MB: '0.5', OMNISCRAPE_WORKER_CONCURRENCY: '20' } });
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
    const jobs = await Promise.all(submitted.map((r) => waitForJob(service, r.body.job_id, undefined, 60_000)));
    jobs.forEach((job, n) => {
      expect(job.status).toBe('completed');
      expect(job.result.data.content).toBe(pageOf(n, 600 * KB));
    });
  }, 90_000);

  test("a slow page holding the whole budget delays other scrapes but never makes them time out", async () => {
    const slow = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/slow-big` });
    await new Promise((r) => setTimeout(r, 500)); // its body is being read: the budget is spent
    // A small page: within twice the budget, so it is let in past the budget rather than time out.
    const quick = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/big?n=7&kb=100`, timeout: 2 });
    const job = await waitForJob(service, quick.body.job_id, undefined, 10_000);
    expect(job).toMatchObject({ status: 'completed' });
    expect(job.result.data.content).toBe(pageOf(7, 100 * KB));
    expect((await waitForJob(service, slow.body.job_id, undefined, 20_000)).status).toBe('completed');
  }, 30_000);
});
