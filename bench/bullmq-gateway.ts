/**
 * The design OmniScrape documents today, as the baseline: the same Express 5 API shape and the same
 * fetch code (our Scraper), with BullMQ on Redis as the queue and the result kept as the job's
 * return value in Redis. Run as its own process: `node dist/bench/bullmq-gateway.js`, configured by
 * REDIS_PORT, PORT and WORKER_CONCURRENCY. Tuned the way the gateway is: one worker with the same
 * concurrency, results and job records kept in Redis (removeOnComplete off, so polls can read them).
 * With BULLMQ_POSTGRES_URL set, the same gateway runs on BullMQ's own Postgres backend
 * (`createPostgresBackend`, its default pool, its schema migrated at start) instead of Redis.
 */
import express from 'express';
import { createPostgresBackend, Job, Queue, Worker, type IQueueBackend, type Processor } from 'bullmq';
import { Scraper } from '../src/scraper/scraper';
import type { ScrapeRequest } from '../src/scraper/scrape-request';
import { parseScrapeRequest } from '../src/http/scrape-schema';
import { successBody, failureBody } from '../src/jobs/outcome';
import { ScrapeFailure } from '../src/domain-errors';

const redis = {
  host: '127.0.0.1',
  port: Number(process.env.REDIS_PORT ?? 6379),
  maxRetriesPerRequest: null,
};
const postgresUrl = process.env.BULLMQ_POSTGRES_URL;
const postgres = { connectionString: postgresUrl, migrate: true };
const concurrency = Number(process.env.WORKER_CONCURRENCY ?? 50);
// One type for both stores: the routes below use only what every backend offers.
type AnyQueue = Queue<ScrapeRequest, unknown, string, ScrapeRequest, unknown, string, IQueueBackend, unknown>;
const queue = (
  postgresUrl
    ? new Queue('scrape', { connection: postgres }, createPostgresBackend)
    : new Queue('scrape', { connection: redis })
) as AnyQueue;
const scraper = new Scraper({ allowPrivateTargets: true, maxBodyBytes: 10 * 1024 * 1024 });

const scrape: Processor<ScrapeRequest> = async (job: Job<ScrapeRequest>) => {
  const started = performance.now();
  try {
    return successBody(
      { page: await scraper.scrape(job.data), engine: 'http' },
      performance.now() - started,
      { pricePerScrape: 0.0035, pricePerRender: 0.01 },
    );
  } catch (err) {
    if (err instanceof ScrapeFailure) return failureBody(err, performance.now() - started);
    throw err;
  }
};
const worker = postgresUrl
  ? new Worker('scrape', scrape, { connection: postgres, concurrency }, createPostgresBackend)
  : new Worker('scrape', scrape, { connection: redis, concurrency });

const app = express();
app.use(express.json({ limit: '2mb' }));
app.post('/v1/scrape/async', async (req, res) => {
  const request = parseScrapeRequest(req.body);
  const job = await queue.add('scrape', request, { removeOnComplete: false, removeOnFail: false });
  res
    .status(202)
    .location(`/v1/jobs/${job.id}`)
    .json({ success: true, job_id: job.id, status: 'queued', poll: `/v1/jobs/${job.id}` });
});
app.get('/v1/jobs/:id', async (req, res) => {
  const job = await Job.fromId(queue, req.params.id);
  if (!job) {
    res.status(404).json({ success: false, error: 'No job with this id.', code: 'JOB_NOT_FOUND' });
    return;
  }
  const state = await job.getState();
  const status =
    state === 'completed'
      ? 'completed'
      : state === 'failed'
        ? 'failed'
        : state === 'active'
          ? 'processing'
          : 'queued';
  res.json({
    success: true,
    data: {
      job_id: job.id,
      status,
      url: job.data.url,
      ...(status === 'completed' ? { result: job.returnvalue } : {}),
    },
  });
});
// The bench waits on this between scenarios, as it waits for omniscrape's queue to empty.
app.get('/bench/backlog', async (_req, res) => {
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  res.json({ jobs: Object.values(counts).reduce((sum, n) => sum + n, 0) });
});
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`);
});

process.on('SIGTERM', () => {
  server.close();
  void (async () => {
    await worker.close();
    await queue.close();
    await scraper.close();
    process.exit(0);
  })();
});
