/**
 * `npm run bench` — the whole benchmark in one run on this machine: an embedded Postgres, a local
 * target server, the gateway, and the BullMQ baselines (on Redis, and on BullMQ's own Postgres
 * backend on the same server) side by side. Prints a table and writes bench/results/latest.json.
 * `npm run bench -- --quick` is a smoke run (a few minutes; CI runs it).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../src/postgres-server/embedded-postgres';
import { freePort } from '../test/helpers/free-port';
import { startPackagedPostgres } from '../test/helpers/packaged-postgres';
import {
  apiClient,
  batchSubmitJobsPerSecond,
  endToEnd,
  endToEndWithWait,
  idleLatency,
  median,
  percentile,
  requestsPerSecond,
  waitLatency,
} from './clients';
import { browserRendering, FULL_SIZES as BROWSER_FULL, QUICK_SIZES as BROWSER_QUICK } from './browser';
import { startGateway, startRedis, startWorker } from './processes';
import { noisyNeighbour, scratchDatabase } from './noisy-neighbour';
import { bullmqBaseline } from './bullmq-baseline';
import { measureJobCost, postgresCpu, postmasterPid, processCpu } from './cpu-counters';
import { idleProcesses } from './idle-processes';
import { slowTargets, FULL_SIZES as SLOW_FULL, QUICK_SIZES as SLOW_QUICK } from './slow-targets';
import { loadHistory, pgbossNoopJobsPerSecond, waitForIdle } from './scenarios';
import { startBenchTarget } from './target-server';

const quick = process.argv.includes('--quick');
const RUNS = quick ? 1 : 3;
const E2E_JOBS = quick ? 1_000 : 20_000;
const NOOP_JOBS = quick ? 5_000 : 50_000;
const LOAD_SECONDS = quick ? 3 : 10;
const IDLE_SAMPLES = quick ? 30 : 200;
const HISTORY_FINISHED = quick ? 20_000 : 1_000_000;
const HISTORY_QUEUED = quick ? 2_000 : 100_000;
const RSS_FETCHES = quick ? 100 : 500;
const BATCHES = quick ? 5 : 20;
const BATCH_SIZE = 1_000;
const BROWSER_SIZES = quick ? BROWSER_QUICK : BROWSER_FULL;
const SLOW_SIZES = quick ? SLOW_QUICK : SLOW_FULL;
const WORKER_CONCURRENCY = '50';
const IDLE_WORKERS = 8;
const IDLE_APIS = 4;
const IDLE_SETTLE_SECONDS = quick ? 5 : 30;
const IDLE_MEASURE_SECONDS = quick ? 5 : 30;
const BENCH_KEY = 'bench-key-0000000001';

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const round = (n: number, digits = 0) => Number(n.toFixed(digits));
/** CPU milliseconds per job are reported to the microsecond. */
const cpuMs = (n: number) => round(n, 3);

async function runs<T>(what: string, fn: (run: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let run = 1; run <= RUNS; run++) {
    log(`${what} (run ${run}/${RUNS})`);
    results.push(await fn(run));
  }
  return results;
}

async function main(): Promise<void> {
  const figures: Record<string, unknown> = {};
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-bench-'));
  fs.chmodSync(dir, 0o755);
  log('starting Postgres (embedded, default durability: fsync on, synchronous_commit on)');
  const postgres = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    persistent: false,
    settings: { max_connections: '300' },
  });
  figures.postgres_version = await serverVersion(postgres.url);
  // Every Postgres process's CPU (bench/cpu-counters.ts): the figures per job of both stores on this server.
  const postmaster = await postmasterPid(postgres.url);
  const pgCpu = postgresCpu(postmaster);
  const target = await startBenchTarget();
  const page2kb = `${target.origin}/2kb`;
  const gatewayEnv = {
    OMNISCRAPE_API_KEYS: `bench:${BENCH_KEY}`,
    OMNISCRAPE_WORKER_CONCURRENCY: WORKER_CONCURRENCY,
    OMNISCRAPE_DEFAULT_CONCURRENCY: '100000',
    OMNISCRAPE_DEFAULT_MAX_QUEUED: '1000000',
    // Stops between scenarios hand in-flight jobs back quickly (the slow backlog job is always in flight).
    OMNISCRAPE_SHUTDOWN_GRACE_SECONDS: '5',
    // One key's 256 ?wait= clients: throughput, not fairness between keys, is measured here.
    OMNISCRAPE_MAX_STREAMS_PER_KEY: '10000',
    OMNISCRAPE_MAX_STREAMS: '10000',
  };
  try {
    // 0. What idle processes cost the shared Postgres, measured first while the server is quiet.
    Object.assign(
      figures,
      await idleProcesses({
        databaseUrl: await scratchDatabase(postgres.url, 'omniscrape_idle'),
        postmaster,
        env: { OMNISCRAPE_API_KEYS: `bench:${BENCH_KEY}` },
        workers: IDLE_WORKERS,
        apis: IDLE_APIS,
        settleSeconds: IDLE_SETTLE_SECONDS,
        measureSeconds: IDLE_MEASURE_SECONDS,
        log,
      }),
    );

    // 1. The queue's ceiling.
    figures.pgboss_noop_jobs_per_s = round(
      median(await runs('pg-boss no-op jobs', () => pgbossNoopJobsPerSecond(postgres.url, NOOP_JOBS))),
    );

    // 2, 4, 5, 6. The gateway.
    let gateway = await startGateway(postgres.url, gatewayEnv);
    let client = apiClient(gateway.baseUrl, BENCH_KEY);
    log('idle latency');
    await idleLatency(client, page2kb, 5); // warm-up
    // The first jobs after a start run slower (V8 compiles the hot paths, each connection prepares
    // its statements): reported apart, and the figure is the running service's that follows.
    const latencyFigures = (samples: number[]) => ({
      p50: round(percentile(samples, 50), 1),
      p95: round(percentile(samples, 95), 1),
      p99: round(percentile(samples, 99), 1),
    });
    figures.idle_latency_cold_ms = latencyFigures(await idleLatency(client, page2kb, IDLE_SAMPLES));
    figures.idle_latency_ms = latencyFigures(await idleLatency(client, page2kb, IDLE_SAMPLES));
    // CPU and WAL per job from the counters around each run (bench/cpu-counters.ts).
    const e2eCost = await runs(`gateway end to end, ${E2E_JOBS} jobs`, () =>
      measureJobCost({ gateway: processCpu(gateway.process.pid!), pg: pgCpu }, postgres.url, E2E_JOBS, () =>
        endToEnd(client, page2kb, E2E_JOBS),
      ),
    );
    const e2e = e2eCost.map((r) => r.result);
    figures.e2e_jobs_per_s = round(median(e2e.map((r) => r.jobsPerSecond)));
    figures.gateway_cpu_ms_per_job = cpuMs(median(e2eCost.map((r) => r.cpuMsPerJob.gateway)));
    figures.pg_cpu_ms_per_job = cpuMs(median(e2eCost.map((r) => r.cpuMsPerJob.pg)));
    figures.wal_bytes_per_job = round(median(e2eCost.map((r) => r.walBytesPerJob!)));
    const pollP99 = median(e2e.map((r) => percentile(r.pollLatenciesMs, 99)));
    figures.poll_p99_ms = round(pollP99, 1);
    // Clients that wait (?wait=) rather than re-poll: each held request keeps a connection.
    const waitClient = apiClient(gateway.baseUrl, BENCH_KEY, 256);
    log('wait latency');
    figures.wait_latency_ms = latencyFigures(await waitLatency(client, page2kb, IDLE_SAMPLES));
    const e2eWait = await runs(`gateway end to end with ?wait= clients, ${E2E_JOBS} jobs`, () =>
      endToEndWithWait(client, waitClient, page2kb, E2E_JOBS),
    );
    figures.e2e_jobs_per_s_wait = round(median(e2eWait));
    await waitClient.close();
    const submits = await runs('gateway single submits (autocannon, 50 connections)', async () => {
      const rate = await requestsPerSecond(
        `${gateway.baseUrl}/v1/scrape/async`,
        { url: page2kb },
        BENCH_KEY,
        LOAD_SECONDS,
      );
      await waitForIdle(postgres.url);
      return rate;
    });
    figures.submit_per_s = round(median(submits));
    const batchSubmits = await runs(
      `gateway batch submits (${BATCHES} × ${BATCH_SIZE} jobs, 2 in flight)`,
      async () => {
        const rate = await batchSubmitJobsPerSecond(gateway.baseUrl, BENCH_KEY, page2kb, {
          batches: BATCHES,
          batchSize: BATCH_SIZE,
          inFlight: 2,
        });
        await waitForIdle(postgres.url);
        return rate;
      },
    );
    figures.batch_submit_jobs_per_s = round(median(batchSubmits));
    figures.sync_per_s = round(
      median(
        await runs('gateway sync scrapes (autocannon, 50 connections)', () =>
          requestsPerSecond(`${gateway.baseUrl}/v1/scrape`, { url: page2kb }, BENCH_KEY, LOAD_SECONDS),
        ),
      ),
    );
    await client.close();
    await gateway.stop();
    const stuck = await unfinishedSyncScrapes(postgres.url);
    if (stuck > 0) log(`WARNING: ${stuck} sync scrapes still processing after the gateway stopped`);

    // 2b. End to end on Debian's packaged Postgres with its stock settings (JIT on, fsync on): what
    // a team's own server runs. Its own cluster, so the embedded server's caches do not help it.
    const packaged = await startPackagedPostgres();
    figures.debian_postgres_version = packaged.version;
    try {
      const debianGateway = await startGateway(packaged.url, gatewayEnv);
      const debianClient = apiClient(debianGateway.baseUrl, BENCH_KEY);
      try {
        await idleLatency(debianClient, page2kb, 5);
        const debian = await runs(
          `gateway end to end on Debian's Postgres ${packaged.version}, ${E2E_JOBS} jobs`,
          () => endToEnd(debianClient, page2kb, E2E_JOBS),
        );
        figures.e2e_jobs_per_s_debian_pg = round(median(debian.map((r) => r.jobsPerSecond)));
      } finally {
        await debianClient.close();
        await debianGateway.stop();
      }
    } finally {
      await packaged.stop();
    }

    // 3. The BullMQ + Redis baseline, same client, same page, same worker concurrency.
    const baseline = {
      page: page2kb,
      apiKey: BENCH_KEY,
      workerConcurrency: WORKER_CONCURRENCY,
      jobs: E2E_JOBS,
      runs: RUNS,
      loadSeconds: LOAD_SECONDS,
      log,
    };
    const redis = await startRedis();
    figures.redis_version = redis.version;
    try {
      const onRedis = await bullmqBaseline({
        ...baseline,
        store: { redisPort: redis.port },
        storeCpu: processCpu(redis.pid),
        idleSamples: IDLE_SAMPLES,
      });
      figures.bullmq_e2e_jobs_per_s = round(onRedis.e2eJobsPerSecond);
      figures.bullmq_submit_per_s = round(onRedis.submitPerSecond);
      figures.bullmq_gateway_cpu_ms_per_job = cpuMs(onRedis.gatewayCpuMsPerJob);
      figures.redis_cpu_ms_per_job = cpuMs(onRedis.storeCpuMsPerJob);
      figures.bullmq_idle_latency_ms = latencyFigures(onRedis.idleLatencyMs);
    } finally {
      await redis.stop();
    }

    // 3b. BullMQ on its own Postgres backend, same gateway, on a database of its own on the same server.
    log('BullMQ on Postgres (createPostgresBackend)');
    const bullmqDatabase = await scratchDatabase(postgres.url, 'bullmq_pg');
    const onPostgres = await bullmqBaseline({
      ...baseline,
      store: { postgresUrl: bullmqDatabase },
      storeCpu: pgCpu,
      walDatabaseUrl: bullmqDatabase,
      idleSamples: 0,
    });
    figures.bullmq_pg_e2e_jobs_per_s = round(onPostgres.e2eJobsPerSecond);
    figures.bullmq_pg_submit_per_s = round(onPostgres.submitPerSecond);
    figures.bullmq_pg_cpu_ms_per_job = cpuMs(onPostgres.storeCpuMsPerJob);
    figures.bullmq_pg_gateway_cpu_ms_per_job = cpuMs(onPostgres.gatewayCpuMsPerJob);
    figures.bullmq_pg_wal_bytes_per_job = round(onPostgres.walBytesPerJob!);

    // 7. Cost growth: a big history and another tenant's backlog.
    await waitForIdle(postgres.url);
    log(`loading ${HISTORY_FINISHED} finished jobs and ${HISTORY_QUEUED} queued ones`);
    const backlogKey = await loadHistory(
      postgres.url,
      HISTORY_FINISHED,
      HISTORY_QUEUED,
      `${target.origin}/2kb?delay=600000`,
    );
    gateway = await startGateway(postgres.url, gatewayEnv);
    client = apiClient(gateway.baseUrl, BENCH_KEY);
    await idleLatency(client, page2kb, 5);
    const loaded = await runs(`gateway end to end with history, ${E2E_JOBS} jobs`, async () => {
      const result = await endToEnd(client, page2kb, E2E_JOBS);
      await waitForIdle(postgres.url, backlogKey);
      return result;
    });
    figures.e2e_jobs_per_s_loaded = round(median(loaded.map((r) => r.jobsPerSecond)));
    figures.poll_p99_ms_loaded = round(median(loaded.map((r) => percentile(r.pollLatenciesMs, 99))), 1);
    await client.close();
    await gateway.stop();

    // 8. Worker memory with many ~1 MB pages in flight: the API and the worker as separate
    // processes (omniscrape api / omniscrape worker), default memory settings, the worker measured.
    const rss = await runs(`worker memory with ${RSS_FETCHES} fetches of ~1 MB in flight`, async () => {
      const api = await startGateway(postgres.url, gatewayEnv, [], 'api');
      const worker = await startWorker(postgres.url, {
        ...gatewayEnv,
        OMNISCRAPE_WORKER_CONCURRENCY: String(RSS_FETCHES),
      });
      const rssClient = apiClient(api.baseUrl, BENCH_KEY);
      try {
        await endToEnd(rssClient, `${target.origin}/1mb?delay=2000`, RSS_FETCHES);
        return worker.peakRssMb();
      } finally {
        await rssClient.close();
        await api.stop();
        await worker.stop();
      }
    });
    figures.worker_rss_mb = round(median(rss));

    // 9. One key's 1,500 batch event streams against another key's reads (bench/noisy-neighbour.ts),
    // on a database of its own.
    log('noisy neighbour: B reads while A holds 1,500 batch event streams');
    const noisy = await noisyNeighbour(
      await scratchDatabase(postgres.url, 'omniscrape_noisy'),
      target.origin,
    );
    Object.assign(figures, noisy);

    // 10. Rendering in the browser (bench/browser.ts): `mode: "auto"` on static pages, then rendered
    // async jobs on a worker process whose Chromium is measured with it; on a database of its own.
    log('rendering in the browser');
    const browser = await browserRendering(
      await scratchDatabase(postgres.url, 'omniscrape_browser'),
      target.origin,
      BROWSER_SIZES,
    );
    Object.assign(figures, browser);

    // 11. Slow targets at high concurrency (bench/slow-targets.ts): one worker process at concurrency
    // 5,000 against pages answering after 5 s, beside BullMQ + Redis at the same concurrency; on a
    // database of its own.
    log(`slow targets: ${SLOW_SIZES.jobs} jobs at concurrency ${SLOW_SIZES.concurrency}`);
    const slowRedis = await startRedis();
    try {
      const slow = await slowTargets(
        {
          databaseUrl: await scratchDatabase(postgres.url, 'omniscrape_slow'),
          postmasterPid: postmaster,
          target,
          redisPort: slowRedis.port,
        },
        SLOW_SIZES,
      );
      Object.assign(figures, slow);
    } finally {
      await slowRedis.stop();
    }
  } finally {
    await target.close();
    await postgres.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const e2e = figures.e2e_jobs_per_s as number;
  const result = {
    generated_at: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    runs_per_figure: RUNS,
    machine: { cores: os.cpus().length, memory_gb: round(os.totalmem() / 2 ** 30, 1), node: process.version },
    versions: {
      'pg-boss': installedVersion('pg-boss'),
      bullmq: installedVersion('bullmq'),
      postgres: figures.postgres_version,
      debian_postgres: figures.debian_postgres_version,
      redis: figures.redis_version,
    },
    settings: {
      e2e_jobs: E2E_JOBS,
      worker_concurrency: Number(WORKER_CONCURRENCY),
      load_seconds: LOAD_SECONDS,
      history_finished: HISTORY_FINISHED,
      history_queued: HISTORY_QUEUED,
      rss_fetches: RSS_FETCHES,
      browser_jobs: BROWSER_SIZES.jobs,
      browser_concurrency: figures.browser_concurrency,
      auto_static_samples: BROWSER_SIZES.overheadSamples,
      idle_processes: { workers: IDLE_WORKERS, apis: IDLE_APIS, measure_seconds: IDLE_MEASURE_SECONDS },
    },
    ...figures,
    ratios: {
      e2e_vs_bullmq: round(e2e / (figures.bullmq_e2e_jobs_per_s as number), 2),
      e2e_vs_pgboss_noop: round(e2e / (figures.pgboss_noop_jobs_per_s as number), 2),
      e2e_wait_vs_bullmq: round(
        (figures.e2e_jobs_per_s_wait as number) / (figures.bullmq_e2e_jobs_per_s as number),
        2,
      ),
      submit_vs_bullmq: round((figures.submit_per_s as number) / (figures.bullmq_submit_per_s as number), 2),
      e2e_debian_pg_vs_embedded: round((figures.e2e_jobs_per_s_debian_pg as number) / e2e, 2),
      e2e_loaded_vs_unloaded: round((figures.e2e_jobs_per_s_loaded as number) / e2e, 2),
      noisy_neighbour_read_vs_unloaded: figures.noisy_neighbour_read_ratio,
      slow_vs_ideal: figures.slow_vs_ideal,
      slow_vs_bullmq: figures.slow_vs_bullmq,
      total_cpu_vs_bullmq: round(
        ((figures.gateway_cpu_ms_per_job as number) + (figures.pg_cpu_ms_per_job as number)) /
          ((figures.bullmq_gateway_cpu_ms_per_job as number) + (figures.redis_cpu_ms_per_job as number)),
        2,
      ),
      gateway_cpu_vs_bullmq: round(
        (figures.gateway_cpu_ms_per_job as number) / (figures.bullmq_gateway_cpu_ms_per_job as number),
        2,
      ),
      e2e_vs_bullmq_pg: round(e2e / (figures.bullmq_pg_e2e_jobs_per_s as number), 2),
      submit_vs_bullmq_pg: round(
        (figures.submit_per_s as number) / (figures.bullmq_pg_submit_per_s as number),
        2,
      ),
      pg_cpu_vs_bullmq_pg: round(
        (figures.pg_cpu_ms_per_job as number) / (figures.bullmq_pg_cpu_ms_per_job as number),
        2,
      ),
      wal_vs_bullmq_pg: round(
        (figures.wal_bytes_per_job as number) / (figures.bullmq_pg_wal_bytes_per_job as number),
        2,
      ),
      idle_p50_vs_bullmq: round(
        (figures.idle_latency_ms as { p50: number }).p50 /
          (figures.bullmq_idle_latency_ms as { p50: number }).p50,
        2,
      ),
      poll_p99_loaded_vs_unloaded: round(
        (figures.poll_p99_ms_loaded as number) / (figures.poll_p99_ms as number),
        2,
      ),
    },
  };
  delete (result as any).redis_version;
  delete (result as any).postgres_version;
  delete (result as any).debian_postgres_version;
  delete (result as any).browser_jobs;
  delete (result as any).browser_concurrency;
  delete (result as any).auto_static_samples;
  const out = path.resolve(__dirname, '../../bench/results', quick ? 'quick.json' : 'latest.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  printTable(result);
  log(`written ${path.relative(process.cwd(), out)}`);
}

async function serverVersion(databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query('show server_version')).rows[0].server_version;
  } finally {
    await client.end();
  }
}

/** Sync scrapes left `processing` after a gateway stopped would mean a lost outcome: say so. */
async function unfinishedSyncScrapes(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (
      await client.query(
        `select count(*)::int as n from omniscrape.scrape_jobs where kind = 'sync' and status = 'processing'`,
      )
    ).rows[0].n;
  } finally {
    await client.end();
  }
}

function printTable(result: any): void {
  const rows: [string, string, string][] = [
    [
      'pgboss_noop_jobs_per_s',
      String(result.pgboss_noop_jobs_per_s),
      'raw pg-boss, no-op handler: the queue ceiling',
    ],
    [
      'e2e_jobs_per_s',
      String(result.e2e_jobs_per_s),
      `target ≥ bullmq_e2e (ratio ${result.ratios.e2e_vs_bullmq}) and ≥ 0.35 × noop (ratio ${result.ratios.e2e_vs_pgboss_noop})`,
    ],
    ['bullmq_e2e_jobs_per_s', String(result.bullmq_e2e_jobs_per_s), 'same pipeline on BullMQ + Redis'],
    [
      'e2e_jobs_per_s_wait',
      String(result.e2e_jobs_per_s_wait),
      `clients wait with ?wait= instead of re-polling; target ≥ bullmq_e2e (ratio ${result.ratios.e2e_wait_vs_bullmq})`,
    ],
    [
      'wait_latency_ms',
      `${result.wait_latency_ms.p50} / ${result.wait_latency_ms.p95} / ${result.wait_latency_ms.p99}`,
      'terminal status change → ?wait= answer, p50 / p95 / p99; target p50 ≤ 2',
    ],
    [
      'submit_per_s',
      String(result.submit_per_s),
      `target ≥ bullmq_submit (ratio ${result.ratios.submit_vs_bullmq})`,
    ],
    ['bullmq_submit_per_s', String(result.bullmq_submit_per_s), 'same load on the BullMQ baseline'],
    [
      'gateway_cpu_ms_per_job',
      String(result.gateway_cpu_ms_per_job),
      `omniscrape serve during e2e; target ≤ 1.2 × bullmq_gateway (ratio ${result.ratios.gateway_cpu_vs_bullmq})`,
    ],
    [
      'pg_cpu_ms_per_job',
      String(result.pg_cpu_ms_per_job),
      `every Postgres process during e2e; target ≤ 0.15, ≤ 0.25 × bullmq_pg (ratio ${result.ratios.pg_cpu_vs_bullmq_pg})`,
    ],
    [
      'bullmq_gateway_cpu_ms_per_job',
      String(result.bullmq_gateway_cpu_ms_per_job),
      `the BullMQ gateway during its e2e; target gateway + pg ≤ this + redis (ratio ${result.ratios.total_cpu_vs_bullmq})`,
    ],
    ['redis_cpu_ms_per_job', String(result.redis_cpu_ms_per_job), 'redis-server during the BullMQ e2e'],
    [
      'wal_bytes_per_job',
      String(result.wal_bytes_per_job),
      `WAL written during e2e; stated, lower than before (BullMQ on Postgres ${result.bullmq_pg_wal_bytes_per_job}, ratio ${result.ratios.wal_vs_bullmq_pg})`,
    ],
    [
      'bullmq_pg_e2e_jobs_per_s',
      String(result.bullmq_pg_e2e_jobs_per_s),
      `BullMQ ${result.versions.bullmq}'s Postgres backend, same gateway and server; target e2e ≥ 2.0 × this (ratio ${result.ratios.e2e_vs_bullmq_pg})`,
    ],
    [
      'bullmq_pg_submit_per_s',
      String(result.bullmq_pg_submit_per_s),
      `same load on BullMQ's Postgres backend (submit ratio ${result.ratios.submit_vs_bullmq_pg})`,
    ],
    [
      'bullmq_pg_cpu_ms_per_job',
      String(result.bullmq_pg_cpu_ms_per_job),
      `every Postgres process during its e2e (its gateway ${result.bullmq_pg_gateway_cpu_ms_per_job}); target pg_cpu ≤ 0.25 × this`,
    ],
    [
      'batch_submit_jobs_per_s',
      String(result.batch_submit_jobs_per_s),
      `POST /v1/scrape/batch, batches of ${BATCH_SIZE}; target ≥ 20,000`,
    ],
    [
      'idle_latency_ms',
      `${result.idle_latency_ms.p50} / ${result.idle_latency_ms.p95} / ${result.idle_latency_ms.p99}`,
      'p50 / p95 / p99; target p50 ≤ 5, p99 ≤ 25',
    ],
    [
      'bullmq_idle_latency_ms',
      `${result.bullmq_idle_latency_ms.p50} / ${result.bullmq_idle_latency_ms.p95} / ${result.bullmq_idle_latency_ms.p99}`,
      `the BullMQ baseline, same client; target idle p50 ≤ this p50 + 2 (ratio ${result.ratios.idle_p50_vs_bullmq})`,
    ],
    [
      'idle_latency_cold_ms',
      `${result.idle_latency_cold_ms.p50} / ${result.idle_latency_cold_ms.p95} / ${result.idle_latency_cold_ms.p99}`,
      'the first jobs after a start',
    ],
    ['sync_per_s', String(result.sync_per_s), 'POST /v1/scrape, ~2 KB page'],
    [
      'e2e_jobs_per_s_debian_pg',
      String(result.e2e_jobs_per_s_debian_pg),
      `Debian's Postgres ${result.versions.debian_postgres}, stock settings; target ≥ 0.8 × e2e (ratio ${result.ratios.e2e_debian_pg_vs_embedded})`,
    ],
    [
      'e2e_jobs_per_s_loaded',
      String(result.e2e_jobs_per_s_loaded),
      `with big history + backlog; target ≥ 0.8 × e2e (ratio ${result.ratios.e2e_loaded_vs_unloaded})`,
    ],
    ['poll_p99_ms', String(result.poll_p99_ms), 'GET /v1/jobs/{id} p99 during e2e'],
    [
      'poll_p99_ms_loaded',
      String(result.poll_p99_ms_loaded),
      `target ≤ 2 × unloaded (ratio ${result.ratios.poll_p99_loaded_vs_unloaded})`,
    ],
    [
      'idle_pg_cpu_pct',
      String(result.idle_pg_cpu_pct),
      `Postgres CPU, % of one core, ${result.settings.idle_processes.workers} idle workers + ${result.settings.idle_processes.apis} idle APIs; target < 2 (none running: ${result.idle_pg_cpu_pct_none})`,
    ],
    [
      'noisy_neighbour_read_p50_ms',
      String(result.noisy_neighbour_read_p50_ms),
      `B's GET /v1/jobs/{id} while A holds ${result.noisy_neighbour_streams} batch streams; unloaded ${result.noisy_neighbour_unloaded_read_p50_ms} (ratio ${result.ratios.noisy_neighbour_read_vs_unloaded})`,
    ],
    [
      'noisy_neighbour_job_ms',
      String(result.noisy_neighbour_job_ms),
      "B's new one-page job meanwhile, submit → completed",
    ],
    [
      'worker_rss_mb',
      String(result.worker_rss_mb),
      `peak RSS, ${result.settings.rss_fetches} fetches of ~1 MB in flight; target ≤ 300`,
    ],
    [
      'browser_jobs_per_s',
      String(result.browser_jobs_per_s),
      `${result.settings.browser_jobs} async jobs with js_rendering, browser concurrency ${result.settings.browser_concurrency}; worker + Chromium CPU ${result.browser_worker_cpu_ms_per_job} ms per job`,
    ],
    [
      'browser_worker_rss_mb',
      String(result.browser_worker_rss_mb),
      `peak RSS of the worker and its Chromium added up meanwhile (mean ${result.browser_worker_rss_mean_mb}, PSS peak ${result.browser_worker_pss_mb})`,
    ],
    [
      'auto_static_overhead_ms',
      String(result.auto_static_overhead_ms),
      `sync p50 of mode "auto" − "http", ~100 KB static page with a script, ${result.settings.auto_static_samples} each (~2 KB: ${result.auto_static_overhead_ms_2kb})`,
    ],
    [
      'slow_jobs_per_s',
      String(result.slow_jobs_per_s),
      `${result.slow_jobs} jobs, pages answering after 5 s ± 20 %, one worker at concurrency ${result.slow_concurrency}; ideal ${result.slow_ideal_jobs_per_s}; target ≥ 0.9 × ideal (ratio ${result.slow_vs_ideal}) and ≥ bullmq_slow (ratio ${result.slow_vs_bullmq})`,
    ],
    ['bullmq_slow_jobs_per_s', String(result.bullmq_slow_jobs_per_s), 'the same on BullMQ + Redis'],
    [
      'slow_worker_rss_mb',
      String(result.slow_worker_rss_mb),
      `peak RSS of that worker (idle ${result.slow_worker_idle_rss_mb}, ${result.slow_worker_kb_per_scrape} KB per scrape in flight); target ≤ 500`,
    ],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  const valueWidth = Math.max(...rows.map((r) => r[1].length));
  process.stdout.write(
    `\nomniscrape benchmark (${result.mode}, median of ${result.runs_per_figure}, ${result.machine.cores} cores)\n`,
  );
  for (const [name, value, note] of rows)
    process.stdout.write(`  ${name.padEnd(width)}  ${value.padStart(valueWidth)}  ${note}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`[bench] failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);

/** The version of a package as installed (its package.json may not be importable through its exports map). */
function installedVersion(name: string): string {
  const manifest = path.resolve(__dirname, '../../node_modules', name, 'package.json');
  return (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version: string }).version;
}
