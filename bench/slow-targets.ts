/**
 * `npm run bench:slow` — the seed's own case: a large backlog against slow targets, where what
 * matters is how many scrapes are really in flight. One `omniscrape worker` process at concurrency
 * 5,000 and one `omniscrape api` process, against a page answering after 5 s ± 20 % (uniform).
 *
 * Clients: the jobs are submitted as batches of 1,000 through `POST /v1/scrape/batch` (4 in
 * flight), and each batch's counts are polled every 2 s (`GET /v1/batches/{id}?limit=1`) until none
 * of its jobs is queued or processing: 50 batches, 25 polls a second, so the polls cost the API
 * little and the figure is the worker's.
 *
 * - `slow_jobs_per_s`: jobs ÷ (first submit → last completion recorded in the job history).
 *   Beside it `slow_jobs_per_s_observed`, up to the poll that saw the last batch done (2 s grain).
 * - `slow_ideal_jobs_per_s`: concurrency ÷ mean delay (5,000 / 5 s = 1,000).
 * - `slow_worker_rss_mb`: the worker's peak RSS (VmHWM) after the run; beside it its RSS idle
 *   after a warm-up, and the difference per scrape in flight at the target's peak.
 * - `slow_peak_in_flight`: the most answers the target held at once (scrapes really in flight).
 * - `bullmq_slow_jobs_per_s`: the BullMQ + Redis baseline gateway (bench/bullmq-gateway.ts, same
 *   Scraper) with a worker at the same concurrency, the same jobs added with `addBulk` in chunks
 *   of 1,000, its counts polled every 2 s; jobs ÷ (first add → last `finishedOn`).
 *
 * Alone, it writes bench/results/slow.json (slow-quick.json with --quick).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import pg from 'pg';
import { Pool } from 'undici';
import { parseScrapeRequest } from '../src/http/scrape-schema';
import { startEmbeddedPostgres } from '../src/postgres-server/embedded-postgres';
import { freePort } from '../test/helpers/free-port';
import { processCpuSeconds, treeCpuSeconds, treeMemory } from './process-tree';
import { startBullmqGateway, startGateway, startRedis, startWorker, type Child } from './processes';
import { runAsCommand, writeResult } from './results-file';
import { startBenchTarget } from './target-server';

const KEY = 'bench-slow-key-0000000001';
/** The target's mean delay and its spread (± a fifth, uniform). */
const DELAY_MS = 5_000;
const JITTER = 0.2;
/** How often clients look at their batches (and the baseline's counts). */
const POLL_EVERY_MS = 2_000;
/** Batches submitted at once. */
const SUBMITTERS = 4;
/** Jobs of a fast page run before the measured load: connections open, V8 compiles the path. */
const WARMUP_JOBS = 200;

export interface SlowSizes {
  jobs: number;
  concurrency: number;
  batchSize: number;
}

export const FULL_SIZES: SlowSizes = { jobs: 50_000, concurrency: 5_000, batchSize: 1_000 };
export const QUICK_SIZES: SlowSizes = { jobs: 2_000, concurrency: 500, batchSize: 500 };

export interface SlowFigures {
  slow_jobs_per_s: number;
  slow_jobs_per_s_observed: number;
  slow_ideal_jobs_per_s: number;
  slow_vs_ideal: number;
  slow_jobs: number;
  slow_concurrency: number;
  /** Jobs that did not end `completed` (each is a failure of the scenario, counted rather than thrown). */
  slow_jobs_not_completed: number;
  slow_peak_in_flight: number;
  slow_worker_rss_mb: number;
  slow_worker_idle_rss_mb: number;
  /** (peak RSS − idle RSS) ÷ the most scrapes in flight at once. */
  slow_worker_kb_per_scrape: number;
  slow_worker_cpu_ms_per_job: number;
  slow_api_cpu_ms_per_job: number;
  /** Every Postgres process's CPU time per job (undefined when the caller gave no postmaster). */
  slow_pg_cpu_ms_per_job?: number;
  bullmq_slow_jobs_per_s?: number;
  bullmq_slow_worker_rss_mb?: number;
  bullmq_slow_peak_in_flight?: number;
  /** The baseline gateway process's CPU time per job (its worker; Redis not counted). */
  bullmq_slow_worker_cpu_ms_per_job?: number;
  slow_vs_bullmq?: number;
}

const log = (msg: string) => process.stderr.write(`[bench:slow] ${msg}\n`);
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SlowTargetsSetup {
  databaseUrl: string;
  /** The postmaster's pid, for Postgres CPU time (its processes are its descendants). */
  postmasterPid?: number;
  target: Awaited<ReturnType<typeof startBenchTarget>>;
  /** A Redis for the baseline; without it the baseline is not run. */
  redisPort?: number;
}

/** The scenario on `databaseUrl` (a database of its own: it leaves its jobs behind). */
export async function slowTargets(
  setup: SlowTargetsSetup,
  sizes: SlowSizes = FULL_SIZES,
): Promise<SlowFigures> {
  const slowUrl = `${setup.target.origin}/2kb?delay=${DELAY_MS}&jitter=${JITTER}`;
  const ours = await omniscrapeSide(setup, sizes, slowUrl);
  const ideal = sizes.concurrency / (DELAY_MS / 1000);
  const figures: SlowFigures = {
    ...ours,
    slow_ideal_jobs_per_s: round(ideal),
    slow_vs_ideal: round(ours.slow_jobs_per_s / ideal, 3),
  };
  if (setup.redisPort === undefined) return figures;
  const theirs = await bullmqSide(setup.redisPort, setup.target, sizes, slowUrl);
  return {
    ...figures,
    ...theirs,
    slow_vs_bullmq: round(ours.slow_jobs_per_s / theirs.bullmq_slow_jobs_per_s, 3),
  };
}

async function omniscrapeSide(
  { databaseUrl, postmasterPid, target }: SlowTargetsSetup,
  sizes: SlowSizes,
  slowUrl: string,
): Promise<Omit<SlowFigures, 'slow_ideal_jobs_per_s' | 'slow_vs_ideal'>> {
  const env = {
    OMNISCRAPE_API_KEYS: `slow:${KEY}`,
    OMNISCRAPE_WORKER_CONCURRENCY: String(sizes.concurrency),
    // One key submits everything: its own limits must not be what is measured.
    OMNISCRAPE_DEFAULT_CONCURRENCY: '100000',
    OMNISCRAPE_DEFAULT_MAX_QUEUED: '1000000',
    OMNISCRAPE_SHUTDOWN_GRACE_SECONDS: '5',
  };
  const api = await startGateway(databaseUrl, env, [], 'api');
  let worker: Child | undefined;
  const pool = new Pool(api.baseUrl, { connections: SUBMITTERS + 8, pipelining: 1 });
  const headers = { 'content-type': 'application/json', 'x-api-key': KEY };
  try {
    worker = await startWorker(databaseUrl, env);
    const workerPid = worker.process.pid!;
    log(`warm-up: ${WARMUP_JOBS} jobs of a fast page`);
    const warmup = await submitBatches(pool, headers, `${target.origin}/2kb`, WARMUP_JOBS, WARMUP_JOBS);
    await pollBatches(pool, headers, warmup, 200);
    const idleRss = treeMemory(workerPid).rssBytes;

    log(`${sizes.jobs} jobs against ${slowUrl}, worker concurrency ${sizes.concurrency}`);
    const cpuBefore = {
      worker: processCpuSeconds(workerPid),
      api: processCpuSeconds(api.process.pid!),
      pg: postmasterPid ? treeCpuSeconds(postmasterPid) : 0,
    };
    target.delayed.resetPeak();
    const started = Date.now();
    const batches = await submitBatches(pool, headers, slowUrl, sizes.jobs, sizes.batchSize);
    log(`submitted in ${((Date.now() - started) / 1000).toFixed(1)} s; polling every ${POLL_EVERY_MS} ms`);
    const observedEnd = await pollBatches(pool, headers, batches, POLL_EVERY_MS);
    const cpu = {
      worker: processCpuSeconds(workerPid) - cpuBefore.worker,
      api: processCpuSeconds(api.process.pid!) - cpuBefore.api,
      pg: postmasterPid ? treeCpuSeconds(postmasterPid) - cpuBefore.pg : 0,
    };
    const peakRssMb = worker.peakRssMb();
    const recorded = await recordedCompletion(databaseUrl, batches);
    const peakInFlight = target.delayed.peak;
    const perJob = (seconds: number) => round((seconds * 1000) / sizes.jobs, 3);
    return {
      slow_jobs_per_s: round(sizes.jobs / ((recorded.lastFinished - started) / 1000)),
      slow_jobs_per_s_observed: round(sizes.jobs / ((observedEnd - started) / 1000)),
      slow_jobs: sizes.jobs,
      slow_concurrency: sizes.concurrency,
      slow_jobs_not_completed: sizes.jobs - recorded.completed,
      slow_peak_in_flight: peakInFlight,
      slow_worker_rss_mb: round(peakRssMb, 0),
      slow_worker_idle_rss_mb: round(idleRss / 2 ** 20, 0),
      slow_worker_kb_per_scrape: round((peakRssMb * 2 ** 20 - idleRss) / 1024 / Math.max(1, peakInFlight)),
      slow_worker_cpu_ms_per_job: perJob(cpu.worker),
      slow_api_cpu_ms_per_job: perJob(cpu.api),
      ...(postmasterPid ? { slow_pg_cpu_ms_per_job: perJob(cpu.pg) } : {}),
    };
  } finally {
    await pool.close();
    await api.stop();
    await worker?.stop();
  }
}

/** Submits `jobs` scrapes of `url` as batches of `batchSize` (SUBMITTERS at once); answers their ids. */
async function submitBatches(
  pool: Pool,
  headers: Record<string, string>,
  url: string,
  jobs: number,
  batchSize: number,
): Promise<string[]> {
  const sizes = Array.from({ length: Math.ceil(jobs / batchSize) }, (_, i) =>
    Math.min(batchSize, jobs - i * batchSize),
  );
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: SUBMITTERS }, async () => {
      while (next < sizes.length) {
        const size = sizes[next++]!;
        const body = JSON.stringify({ requests: Array.from({ length: size }, () => ({ url })) });
        const res = await pool.request({ path: '/v1/scrape/batch', method: 'POST', headers, body });
        const answer = (await res.body.json()) as { batch_id?: string };
        if (res.statusCode !== 202 || !answer.batch_id)
          throw new Error(`batch answered ${res.statusCode}: ${JSON.stringify(answer).slice(0, 300)}`);
        ids.push(answer.batch_id);
      }
    }),
  );
  return ids;
}

/**
 * Polls each batch every `everyMs` until none of its jobs is queued or processing; answers when
 * the last one was seen done (epoch ms).
 */
async function pollBatches(
  pool: Pool,
  headers: Record<string, string>,
  batchIds: string[],
  everyMs: number,
): Promise<number> {
  let lastDone = 0;
  await Promise.all(
    batchIds.map(async (id) => {
      for (;;) {
        const res = await pool.request({ path: `/v1/batches/${id}?limit=1`, method: 'GET', headers });
        const answer = (await res.body.json()) as { data?: { counts: Record<string, number> } };
        if (res.statusCode !== 200 || !answer.data)
          throw new Error(`batch poll answered ${res.statusCode}: ${JSON.stringify(answer).slice(0, 300)}`);
        const { queued = 0, processing = 0 } = answer.data.counts;
        if (queued + processing === 0) {
          lastDone = Math.max(lastDone, Date.now());
          return;
        }
        await sleep(everyMs);
      }
    }),
  );
  return lastDone;
}

/** The batches' completed jobs and when the last of their jobs ended, from the job history. */
async function recordedCompletion(
  databaseUrl: string,
  batchIds: string[],
): Promise<{ completed: number; lastFinished: number }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ completed: number; last: Date }>(
      `select count(*) filter (where status = 'completed')::int as completed, max(finished_at) as last
         from omniscrape_reporting.job_history where batch_id = any($1::uuid[])`,
      [batchIds],
    );
    return { completed: rows[0]!.completed, lastFinished: rows[0]!.last.getTime() };
  } finally {
    await client.end();
  }
}

async function bullmqSide(
  redisPort: number,
  target: SlowTargetsSetup['target'],
  sizes: SlowSizes,
  slowUrl: string,
): Promise<{
  bullmq_slow_jobs_per_s: number;
  bullmq_slow_worker_rss_mb: number;
  bullmq_slow_peak_in_flight: number;
  bullmq_slow_worker_cpu_ms_per_job: number;
}> {
  const gateway = await startBullmqGateway({ redisPort }, { WORKER_CONCURRENCY: String(sizes.concurrency) });
  const queue = new Queue('scrape', { connection: { host: '127.0.0.1', port: redisPort } });
  try {
    const add = async (url: string, jobs: number) => {
      const request = parseScrapeRequest({ url });
      for (let i = 0; i < jobs; i += sizes.batchSize) {
        const n = Math.min(sizes.batchSize, jobs - i);
        await queue.addBulk(
          Array.from({ length: n }, () => ({
            name: 'scrape',
            data: request,
            opts: { removeOnComplete: false, removeOnFail: false },
          })),
        );
      }
    };
    const waitFor = async (total: number, everyMs: number) => {
      for (;;) {
        const counts = await queue.getJobCounts('completed', 'failed');
        if ((counts.completed ?? 0) + (counts.failed ?? 0) >= total) return counts;
        await sleep(everyMs);
      }
    };
    log(`baseline warm-up: ${WARMUP_JOBS} jobs of a fast page`);
    await add(`${target.origin}/2kb`, WARMUP_JOBS);
    await waitFor(WARMUP_JOBS, 200);
    log(`baseline: ${sizes.jobs} jobs, BullMQ worker concurrency ${sizes.concurrency}`);
    target.delayed.resetPeak();
    const cpuBefore = processCpuSeconds(gateway.process.pid!);
    const started = Date.now();
    await add(slowUrl, sizes.jobs);
    const counts = await waitFor(WARMUP_JOBS + sizes.jobs, POLL_EVERY_MS);
    const cpuSeconds = processCpuSeconds(gateway.process.pid!) - cpuBefore;
    if ((counts.failed ?? 0) > 0) throw new Error(`baseline: ${counts.failed} jobs failed`);
    // The completed set is scored by each job's finishedOn: its last member is the last to end.
    const redis = new Redis({ host: '127.0.0.1', port: redisPort });
    const [, score] = await redis
      .zrange(queue.toKey('completed'), '-1', '-1', 'WITHSCORES')
      .finally(() => redis.disconnect());
    return {
      bullmq_slow_jobs_per_s: round(sizes.jobs / ((Number(score) - started) / 1000)),
      bullmq_slow_worker_rss_mb: round(gateway.peakRssMb(), 0),
      bullmq_slow_peak_in_flight: target.delayed.peak,
      bullmq_slow_worker_cpu_ms_per_job: round((cpuSeconds * 1000) / sizes.jobs, 3),
    };
  } finally {
    await queue.close();
    await gateway.stop();
  }
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const sizes = quick ? QUICK_SIZES : FULL_SIZES;
  const fds = Number(fs.readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+)/)?.[1]);
  if (fds < 2 * sizes.concurrency + 1000)
    throw new Error(`ulimit -n is ${fds}: the target and the worker each hold ${sizes.concurrency} sockets`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-slow-'));
  fs.chmodSync(dir, 0o755);
  log('starting Postgres (embedded), Redis and the target server');
  const postgres = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    persistent: false,
  });
  const postmasterPid = Number(
    fs.readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0],
  );
  const redis = await startRedis();
  const target = await startBenchTarget();
  try {
    const loadBefore = os.loadavg();
    const figures = await slowTargets(
      { databaseUrl: postgres.url, postmasterPid, target, redisPort: redis.port },
      sizes,
    );
    const result = {
      generated_at: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      machine: {
        cores: os.cpus().length,
        memory_gb: round(os.totalmem() / 2 ** 30),
        load_average_before: loadBefore.map((n) => round(n, 2)),
        load_average_after: os.loadavg().map((n) => round(n, 2)),
        node: process.version,
        open_files_limit: fds,
      },
      ...figures,
    };
    const written = writeResult(quick ? 'slow-quick' : 'slow', result);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    log(`written ${written}`);
  } finally {
    await target.close();
    await redis.stop();
    await postgres.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) runAsCommand('slow', main);
