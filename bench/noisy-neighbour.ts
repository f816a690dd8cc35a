/**
 * `npm run bench -- --noisy-neighbour` (also part of `npm run bench`) — what key B's reads cost
 * while key A holds many batch event streams: an `omniscrape serve` on a database of its own, B's
 * GET /v1/jobs/{id} p50 unloaded, then again while A holds 1,500 `GET /v1/batches/{id}/events`
 * streams (100 on each of 15 batches of 1,000 jobs, which its workers are scraping, so status
 * notices keep coming). A's per-key stream cap is raised to 2,000 for the run: the figure is the
 * cost of the streams themselves, not of the cap refusing them. Alone, it writes
 * bench/results/noisy-neighbour.json.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { isTerminal } from '../src/contract/errors';
import { startEmbeddedPostgres } from '../src/postgres-server/embedded-postgres';
import { freePort } from '../test/helpers/free-port';
import { percentile } from './clients';
import { startGateway } from './processes';
import { startBenchTarget } from './target-server';
import { runAsCommand, writeResult } from './results-file';

const KEY_A = 'bench-noisy-key-a-000001';
const KEY_B = 'bench-noisy-key-b-000002';
const BATCHES = 15;
const BATCH_SIZE = 1_000;
const STREAMS_PER_BATCH = 100;
const READS = 200;
/** How long each of A's scrapes takes: the batches stay in progress for the whole measurement. */
const SCRAPE_DELAY_MS = 1_000;

const log = (line: string) => process.stderr.write(`[noisy-neighbour] ${line}\n`);
const round = (n: number, digits = 1) => Number(n.toFixed(digits));

export interface NoisyNeighbourFigures {
  /** B's GET /v1/jobs/{id} p50 with nothing else running. */
  noisy_neighbour_unloaded_read_p50_ms: number;
  /** B's GET /v1/jobs/{id} p50 while A holds the streams and its batches are being scraped. */
  noisy_neighbour_read_p50_ms: number;
  noisy_neighbour_streams: number;
  noisy_neighbour_read_ratio: number;
  /** B's new one-page job meanwhile: submit → `completed` seen through `?wait=`. */
  noisy_neighbour_job_ms: number;
}

async function call(
  baseUrl: string,
  key: string,
  method: string,
  route: string,
  body?: unknown,
): Promise<any> {
  const res = await fetch(baseUrl + route, {
    method,
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** The p50 of `n` reads of one job, one after another, in ms. */
async function readP50(baseUrl: string, jobId: string, n: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    const res = await fetch(`${baseUrl}/v1/jobs/${jobId}`, { headers: { 'x-api-key': KEY_B } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`B's read answered ${res.status}`);
    times.push(performance.now() - start);
  }
  return percentile(times, 50);
}

/** How long a new job of B's takes, submit to `completed` seen through `?wait=`, in ms. */
async function jobEndToEnd(baseUrl: string, url: string): Promise<number> {
  const start = performance.now();
  const submitted = await call(baseUrl, KEY_B, 'POST', '/v1/scrape/async', { url });
  for (;;) {
    const polled = await call(baseUrl, KEY_B, 'GET', `/v1/jobs/${submitted.body.job_id}?wait=30`);
    if (polled.body.data?.status === 'completed') return performance.now() - start;
    if (polled.status !== 200 || isTerminal(polled.body.data?.status))
      throw new Error(`B's job ended ${JSON.stringify(polled.body)}`);
  }
}

/** One event stream on its own connection; resolves with its status once its headers arrive. */
function openStream(baseUrl: string, route: string, open: http.ClientRequest[]): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(`${baseUrl}${route}`, { agent: false, headers: { 'x-api-key': KEY_A } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    open.push(req);
  });
}

/** The scenario on `databaseUrl` (a database of its own: it leaves 15,000 jobs behind). */
export async function noisyNeighbour(
  databaseUrl: string,
  targetOrigin: string,
): Promise<NoisyNeighbourFigures> {
  const gateway = await startGateway(databaseUrl, {
    OMNISCRAPE_API_KEYS: `noisy:${KEY_A},neighbour:${KEY_B}`,
    OMNISCRAPE_MAX_STREAMS_PER_KEY: '2000',
    OMNISCRAPE_MAX_BATCH: String(BATCH_SIZE),
    OMNISCRAPE_DEFAULT_MAX_QUEUED: String(2 * BATCHES * BATCH_SIZE),
    OMNISCRAPE_SHUTDOWN_GRACE_SECONDS: '1',
  });
  const open: http.ClientRequest[] = [];
  try {
    const b = await call(gateway.baseUrl, KEY_B, 'POST', '/v1/scrape/async', { url: `${targetOrigin}/2kb` });
    const bJob = b.body.job_id as string;
    await readP50(gateway.baseUrl, bJob, READS); // warm-up: V8 compiles the read path, the pool opens
    log(`B's reads, unloaded (${READS})`);
    const unloaded = await readP50(gateway.baseUrl, bJob, READS);

    log(`A submits ${BATCHES} batches of ${BATCH_SIZE} jobs and opens ${STREAMS_PER_BATCH} streams on each`);
    const statuses: number[] = [];
    for (let i = 0; i < BATCHES; i++) {
      const requests = Array.from({ length: BATCH_SIZE }, (_, j) => ({
        url: `${targetOrigin}/2kb?delay=${SCRAPE_DELAY_MS}&b=${i}&j=${j}`,
      }));
      const batch = await call(gateway.baseUrl, KEY_A, 'POST', '/v1/scrape/batch', { requests });
      if (batch.status !== 202)
        throw new Error(`A's batch answered ${batch.status}: ${JSON.stringify(batch.body)}`);
      const route = `/v1/batches/${batch.body.batch_id}/events`;
      statuses.push(
        ...(await Promise.all(
          Array.from({ length: STREAMS_PER_BATCH }, () => openStream(gateway.baseUrl, route, open)),
        )),
      );
    }
    const streams = statuses.filter((s) => s === 200).length;
    if (streams !== BATCHES * STREAMS_PER_BATCH) log(`WARNING: only ${streams} streams opened`);
    log(`B's reads while A holds ${streams} streams (${READS})`);
    const loaded = await readP50(gateway.baseUrl, bJob, READS);
    log("B's new one-page job");
    const jobMs = await jobEndToEnd(gateway.baseUrl, `${targetOrigin}/2kb`);
    return {
      noisy_neighbour_unloaded_read_p50_ms: round(unloaded),
      noisy_neighbour_read_p50_ms: round(loaded),
      noisy_neighbour_streams: streams,
      noisy_neighbour_read_ratio: round(loaded / unloaded, 2),
      noisy_neighbour_job_ms: round(jobMs, 0),
    };
  } finally {
    for (const req of open) req.destroy();
    await gateway.stop();
  }
}

/** A new database beside `adminUrl`'s, for a scenario that leaves rows behind; its URL. */
export async function scratchDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-noisy-'));
  fs.chmodSync(dir, 0o755);
  const postgres = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    persistent: false,
    settings: { max_connections: '300' },
  });
  const target = await startBenchTarget();
  try {
    const figures = await noisyNeighbour(postgres.url, target.origin);
    const result = {
      generated_at: new Date().toISOString(),
      machine: {
        cores: os.cpus().length,
        load_average: os.loadavg().map((n) => round(n, 2)),
        node: process.version,
      },
      ...figures,
    };
    const written = writeResult('noisy-neighbour', result);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    log(`written ${written}`);
  } finally {
    await target.close();
    await postgres.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) runAsCommand('noisy-neighbour', main);
