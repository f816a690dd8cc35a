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
      const body = pageOf(Number(url.searchParams.get('n')), 600 * KB);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
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
});
