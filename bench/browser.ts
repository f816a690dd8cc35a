/**
 * `npm run bench:browser` (also part of `npm run bench`) — rendering in the browser through the
 * real service: an `omniscrape api` and an `omniscrape worker` as separate processes, at the
 * default browser concurrency (2 pages per process), against pages of a local target server.
 *
 * - `auto_static_overhead_ms`: what `mode: "auto"` adds to a static page (a ~100 KB page that loads
 *   a script file, so `auto` parses it to tell it from a shell, and answers it as fetched):
 *   sync `POST /v1/scrape` of that page with `mode: "http"` and with `mode: "auto"`, alternated,
 *   one request at a time; the difference of the medians. Beside it the same on the ~2 KB page.
 * - `browser_jobs_per_s`: async jobs with `js_rendering: true` of a page whose text its script
 *   writes, after a warm-up: jobs ÷ (first submit → last completion seen through `?wait=`), each
 *   result checked for the script's text; beside it the CPU time of the worker and its Chromium
 *   per job (`browser_worker_cpu_ms_per_job`).
 * - `browser_worker_rss_mb`: the worker process and its Chromium processes (all its descendants)
 *   together, RSS added up from /proc every 250 ms during that load: the peak (beside it the mean,
 *   and the peak of PSS, which counts shared pages once).
 *
 * Alone, it writes bench/results/browser.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { isTerminal } from '../src/contract/errors';
import { startEmbeddedPostgres } from '../src/postgres-server/embedded-postgres';
import { freePort } from '../test/helpers/free-port';
import { median } from './clients';
import {
  processCpuSeconds,
  processTree,
  sampleTreeMemory,
  treeCpuSeconds,
  treeMemory,
  type TreeMemorySummary,
} from './process-tree';
import { startGateway, startWorker, type Child } from './processes';
import { SCRIPT_BUILT_TEXT, startBenchTarget } from './target-server';
import { runAsCommand, writeResult } from './results-file';

const KEY = 'bench-browser-key-000001';
const CHROMIUM = '/usr/bin/chromium';
/** OMNISCRAPE_BROWSER_CONCURRENCY's default, set so that a value in the environment does not change the figure. */
const BROWSER_CONCURRENCY = '2';
/** Seconds each rendered job may take: slots are waited for inside it, and the worker claims 20 jobs at once. */
const RENDER_TIMEOUT_SECONDS = 60;

export interface BrowserSizes {
  /** Rendered jobs before the measured ones (Chromium starts, V8 compiles the render path). */
  warmupJobs: number;
  jobs: number;
  /** Sync scrapes per mode for `auto_static_overhead_ms`, after a tenth as many warm-up pairs. */
  overheadSamples: number;
}

export const FULL_SIZES: BrowserSizes = { warmupJobs: 10, jobs: 200, overheadSamples: 200 };
export const QUICK_SIZES: BrowserSizes = { warmupJobs: 4, jobs: 30, overheadSamples: 40 };

export interface BrowserFigures {
  browser_jobs_per_s: number;
  browser_jobs: number;
  browser_concurrency: number;
  /**
   * CPU time the worker and its Chromium used per measured job: what a render costs, which a busy
   * machine does not change as much as it changes the rate.
   */
  browser_worker_cpu_ms_per_job: number;
  /** Of which the worker's Node process (the job, the browser engine's side of the protocol). */
  browser_worker_node_cpu_ms_per_job: number;
  /** Peak of the worker's and its Chromium processes' RSS added up, during the measured load. */
  browser_worker_rss_mb: number;
  browser_worker_rss_mean_mb: number;
  /** Peak of their PSS added up (shared pages counted once). */
  browser_worker_pss_mb: number;
  /** The worker alone before its first render (no Chromium yet). */
  browser_worker_idle_rss_mb: number;
  browser_worker_processes: number;
  browser_worker_rss_samples: number;
  /** Median sync latency of `mode: "auto"` minus that of `mode: "http"`, ~100 KB static page. */
  auto_static_overhead_ms: number;
  auto_static_http_p50_ms: number;
  auto_static_auto_p50_ms: number;
  /** The same on the ~2 KB static page. */
  auto_static_overhead_ms_2kb: number;
  auto_static_samples: number;
}

const log = (line: string) => process.stderr.write(`[browser] ${line}\n`);
const round = (n: number, digits = 1) => Number(n.toFixed(digits));
const HEADERS = { 'content-type': 'application/json', 'x-api-key': KEY };

async function post(pool: Pool, route: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await pool.request({
    path: route,
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, body: await res.body.json() };
}

/** One sync scrape's latency in ms, after checking it answered the page with the HTTP engine. */
async function syncScrapeMs(pool: Pool, url: string, mode: 'http' | 'auto'): Promise<number> {
  const start = performance.now();
  const res = await post(pool, '/v1/scrape', { url, mode });
  const ms = performance.now() - start;
  if (res.status !== 200)
    throw new Error(`sync scrape (${mode}) answered ${res.status}: ${JSON.stringify(res.body)}`);
  if (res.body.metadata.engine !== 'http')
    throw new Error(`mode "${mode}" rendered the static page ${url} (engine ${res.body.metadata.engine})`);
  return ms;
}

/**
 * `samples` sync scrapes of `url` per mode, one at a time, alternating the modes (and which goes
 * first in each pair, so neither always follows the other); the medians in ms.
 */
async function autoOverhead(
  pool: Pool,
  url: string,
  samples: number,
): Promise<{ httpMs: number; autoMs: number }> {
  const times = { http: [] as number[], auto: [] as number[] };
  for (let i = 0; i < samples; i++) {
    const order = i % 2 === 0 ? (['http', 'auto'] as const) : (['auto', 'http'] as const);
    for (const mode of order) times[mode].push(await syncScrapeMs(pool, url, mode));
  }
  return { httpMs: median(times.http), autoMs: median(times.auto) };
}

/**
 * Submits `jobs` rendered async scrapes of the script-built page and follows each to its end with
 * `?wait=` (16 at once, oldest first); throws unless every one completed with the script's text.
 * Resolves with the seconds from the first submit to the last end seen.
 */
async function renderJobs(pool: Pool, origin: string, jobs: number, what: string): Promise<number> {
  const started = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < jobs; i++) {
    const res = await post(pool, '/v1/scrape/async', {
      url: `${origin}/script-built?job=${i}`,
      js_rendering: true,
      timeout: RENDER_TIMEOUT_SECONDS,
    });
    if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${JSON.stringify(res.body)}`);
    ids.push(res.body.job_id);
  }
  let next = 0;
  let done = 0;
  const followOne = async (id: string) => {
    for (;;) {
      const res = await pool.request({ path: `/v1/jobs/${id}?wait=30`, method: 'GET', headers: HEADERS });
      const job = ((await res.body.json()) as any).data;
      if (res.statusCode !== 200) throw new Error(`wait answered ${res.statusCode}`);
      if (!isTerminal(job.status)) continue;
      if (job.status !== 'completed') throw new Error(`rendered job ${id} ended ${JSON.stringify(job)}`);
      if (job.result.metadata.engine !== 'browser' || !job.result.data.content.includes(SCRIPT_BUILT_TEXT))
        throw new Error(`rendered job ${id} has not the script's text: ${JSON.stringify(job.result)}`);
      done++;
      if (done % Math.max(1, Math.floor(jobs / 4)) === 0 && done < jobs)
        log(`${what}: ${done}/${jobs} rendered`);
      return;
    }
  };
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < ids.length) await followOne(ids[next++]!);
    }),
  );
  return (performance.now() - started) / 1000;
}

/** Stops the worker, then makes sure none of its Chromium processes outlived it (killing any by pid). */
async function stopWorker(worker: Child): Promise<void> {
  const tree = processTree(worker.process.pid!).slice(1);
  await worker.stop();
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 50 && tree.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
  const left = tree.filter(alive);
  if (left.length === 0) return;
  log(`WARNING: ${left.length} Chromium processes outlived the worker: killed`);
  for (const pid of left) process.kill(pid, 'SIGKILL');
}

/** The scenario on `databaseUrl` (a database of its own: it leaves its jobs behind). */
export async function browserRendering(
  databaseUrl: string,
  targetOrigin: string,
  sizes: BrowserSizes = FULL_SIZES,
): Promise<BrowserFigures> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run sh scripts/chromium.sh (as root)`);
  const env = {
    OMNISCRAPE_API_KEYS: `browser:${KEY}`,
    OMNISCRAPE_BROWSER_CONCURRENCY: BROWSER_CONCURRENCY,
    OMNISCRAPE_SHUTDOWN_GRACE_SECONDS: '5',
  };
  const api = await startGateway(databaseUrl, env, [], 'api');
  let worker: Child | undefined;
  const pool = new Pool(api.baseUrl, { connections: 32, pipelining: 1 });
  try {
    // 1. mode "auto" on static pages: the API process scrapes sync requests itself.
    const warmup = Math.max(2, Math.round(sizes.overheadSamples / 10));
    await autoOverhead(pool, `${targetOrigin}/100kb-script`, warmup);
    log(`mode "auto" against "http", ~100 KB static page (${sizes.overheadSamples} sync scrapes each)`);
    const big = await autoOverhead(pool, `${targetOrigin}/100kb-script`, sizes.overheadSamples);
    await autoOverhead(pool, `${targetOrigin}/2kb-script`, warmup);
    log(`mode "auto" against "http", ~2 KB static page (${sizes.overheadSamples} sync scrapes each)`);
    const small = await autoOverhead(pool, `${targetOrigin}/2kb-script`, sizes.overheadSamples);
    const apiTree = processTree(api.process.pid!);
    if (apiTree.length > 1)
      throw new Error(`the API process started ${apiTree.length - 1} processes for static pages`);

    // 2. Rendered async jobs on a worker process of its own, its process tree measured.
    worker = await startWorker(databaseUrl, env);
    const idle = treeMemory(worker.process.pid!);
    log(`warm-up: ${sizes.warmupJobs} rendered jobs (the worker starts Chromium)`);
    await renderJobs(pool, targetOrigin, sizes.warmupJobs, 'warm-up');
    log(`${sizes.jobs} rendered jobs, browser concurrency ${BROWSER_CONCURRENCY}`);
    const cpuBefore = treeCpuSeconds(worker.process.pid!);
    const nodeCpuBefore = processCpuSeconds(worker.process.pid!);
    const memory = sampleTreeMemory(worker.process.pid!);
    let seconds: number;
    let summary: TreeMemorySummary;
    try {
      seconds = await renderJobs(pool, targetOrigin, sizes.jobs, 'measured');
    } finally {
      summary = memory.stop();
    }
    const cpuSeconds = treeCpuSeconds(worker.process.pid!) - cpuBefore;
    const nodeCpuSeconds = processCpuSeconds(worker.process.pid!) - nodeCpuBefore;
    return {
      browser_jobs_per_s: round(sizes.jobs / seconds),
      browser_jobs: sizes.jobs,
      browser_concurrency: Number(BROWSER_CONCURRENCY),
      browser_worker_cpu_ms_per_job: round((cpuSeconds * 1000) / sizes.jobs, 0),
      browser_worker_node_cpu_ms_per_job: round((nodeCpuSeconds * 1000) / sizes.jobs, 0),
      browser_worker_rss_mb: round(summary.peakRssMb, 0),
      browser_worker_rss_mean_mb: round(summary.meanRssMb, 0),
      browser_worker_pss_mb: round(summary.peakPssMb, 0),
      browser_worker_idle_rss_mb: round(idle.rssBytes / 2 ** 20, 0),
      browser_worker_processes: summary.peakProcesses,
      browser_worker_rss_samples: summary.samples,
      auto_static_overhead_ms: round(big.autoMs - big.httpMs, 2),
      auto_static_http_p50_ms: round(big.httpMs, 2),
      auto_static_auto_p50_ms: round(big.autoMs, 2),
      auto_static_overhead_ms_2kb: round(small.autoMs - small.httpMs, 2),
      auto_static_samples: sizes.overheadSamples,
    };
  } finally {
    await pool.close();
    await api.stop();
    if (worker) await stopWorker(worker);
  }
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-browser-'));
  fs.chmodSync(dir, 0o755);
  log('starting Postgres (embedded) and the target server');
  const postgres = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    persistent: false,
  });
  const target = await startBenchTarget();
  try {
    const loadBefore = os.loadavg();
    const figures = await browserRendering(postgres.url, target.origin, quick ? QUICK_SIZES : FULL_SIZES);
    const result = {
      generated_at: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      machine: {
        cores: os.cpus().length,
        memory_gb: round(os.totalmem() / 2 ** 30),
        load_average_before: loadBefore.map((n) => round(n, 2)),
        load_average_after: os.loadavg().map((n) => round(n, 2)),
        node: process.version,
      },
      ...figures,
    };
    const written = writeResult(quick ? 'browser-quick' : 'browser', result);
    process.stdout.write(`${JSON.stringify(result, null, 2)}
`);
    log(`written ${written}`);
  } finally {
    await target.close();
    await postgres.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) runAsCommand('browser', main);
