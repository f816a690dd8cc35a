import autocannon from 'autocannon';
import { Pool } from 'undici';
import { isTerminal, type JobStatus } from '../src/contract/errors';

export interface Timed {
  jobsPerSecond: number;
  pollLatenciesMs: number[];
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const median = (values: number[]) => percentile(values, 50);

interface ApiClient {
  submit(url: string): Promise<string>;
  poll(jobId: string): Promise<JobStatus>;
  /** GET /v1/jobs/{id}?wait=: the job as the answer found it, and when the answer arrived (epoch ms). */
  wait(jobId: string, seconds: number): Promise<{ status: JobStatus; updatedAt: number; arrivedAt: number }>;
  close(): Promise<void>;
}

/** A keep-alive HTTP client for one gateway (omniscrape or the BullMQ baseline: same API). */
export function apiClient(baseUrl: string, apiKey: string, connections = 64): ApiClient {
  const pool = new Pool(baseUrl, { connections, pipelining: 1 });
  const headers = { 'content-type': 'application/json', 'x-api-key': apiKey };
  return {
    async submit(url) {
      for (;;) {
        const res = await pool.request({
          path: '/v1/scrape/async',
          method: 'POST',
          headers,
          body: JSON.stringify({ url }),
        });
        const body = (await res.body.json()) as any;
        if (res.statusCode === 202) return body.job_id as string;
        if (res.statusCode === 503 || res.statusCode === 429) {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        throw new Error(`submit answered ${res.statusCode}: ${JSON.stringify(body)}`);
      }
    },
    async poll(jobId) {
      const res = await pool.request({ path: `/v1/jobs/${jobId}`, method: 'GET', headers });
      const body = (await res.body.json()) as any;
      if (res.statusCode !== 200) throw new Error(`poll answered ${res.statusCode}: ${JSON.stringify(body)}`);
      return body.data.status as JobStatus;
    },
    async wait(jobId, seconds) {
      const res = await pool.request({ path: `/v1/jobs/${jobId}?wait=${seconds}`, method: 'GET', headers });
      const body = (await res.body.json()) as any;
      const arrivedAt = Date.now();
      if (res.statusCode !== 200) throw new Error(`wait answered ${res.statusCode}: ${JSON.stringify(body)}`);
      return { status: body.data.status, updatedAt: Date.parse(body.data.updated_at), arrivedAt };
    },
    close: () => pool.close(),
  };
}

async function inParallel(count: number, fn: (worker: number) => Promise<void>): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, i) => fn(i)));
}

/** Submits `jobs` async scrapes (50 submitters); `ids` fills as they are accepted, `done` once all are. */
function submitAll(client: ApiClient, targetUrl: string, jobs: number) {
  const state = { ids: [] as string[], done: false, finished: Promise.resolve() };
  let submitted = 0;
  state.finished = inParallel(50, async () => {
    while (submitted < jobs) {
      submitted++;
      state.ids.push(await client.submit(targetUrl));
    }
  }).finally(() => {
    state.done = true;
  });
  return state;
}

/**
 * End to end: submits `jobs` async scrapes through the API (50 submitters), and observes each one
 * `completed` through the API (20 pollers walking the jobs oldest first, revisiting unfinished
 * ones). Throughput = jobs / (first submit → last completion observed).
 */
export async function endToEnd(client: ApiClient, targetUrl: string, jobs: number): Promise<Timed> {
  const pollLatenciesMs: number[] = [];
  const started = performance.now();
  const submissions = submitAll(client, targetUrl, jobs);
  const { ids } = submissions;

  let next = 0;
  let completed = 0;
  const pending: string[] = [];
  const pollers = inParallel(20, async () => {
    while (completed < jobs) {
      let id: string | undefined;
      if (pending.length > 0 && (next >= ids.length || pending.length > 200)) id = pending.shift();
      else if (next < ids.length) id = ids[next++];
      else if (pending.length > 0) id = pending.shift();
      if (!id) {
        if (submissions.done && next >= ids.length && pending.length === 0) return;
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      const t = performance.now();
      const status = await client.poll(id);
      pollLatenciesMs.push(performance.now() - t);
      if (status === 'completed') completed++;
      else if (status === 'failed' || status === 'timed_out') throw new Error(`job ${id} ended ${status}`);
      else {
        pending.push(id);
        if (pending.length > 50) await new Promise((r) => setTimeout(r, 5));
      }
    }
  });
  await Promise.all([submissions.finished, pollers]);
  return { jobsPerSecond: jobs / ((performance.now() - started) / 1000), pollLatenciesMs };
}

/**
 * One job at a time on an idle system: 202 → `completed` visible to a client polling every
 * `pollEveryMs` (0: back to back). Back-to-back polling on 2 cores measures mostly the polls
 * competing with the job they wait for (the gateway's one thread serves both), so the benchmark
 * polls every millisecond: the figure is then the service's latency plus at most 1 ms of interval.
 */
export async function idleLatency(
  client: ApiClient,
  targetUrl: string,
  samples: number,
  pollEveryMs = 1,
): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    const id = await client.submit(targetUrl);
    while ((await client.poll(id)) !== 'completed') {
      if (pollEveryMs > 0) await new Promise((r) => setTimeout(r, pollEveryMs));
    }
    latencies.push(performance.now() - t);
  }
  return latencies;
}

/** Requests per second of one POST under load: autocannon, keep-alive, 50 connections. */
export async function requestsPerSecond(
  url: string,
  body: unknown,
  apiKey: string,
  seconds: number,
): Promise<number> {
  const result = await autocannon({
    url,
    method: 'POST',
    connections: 50,
    duration: seconds,
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify(body),
  });
  const ok = result['2xx'];
  if (result.non2xx > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers under load`);
  return ok / seconds;
}

/**
 * Jobs accepted per second through POST /v1/scrape/batch: `batches` batches of `batchSize` jobs,
 * `inFlight` at a time, from the first request sent to the last 202 received.
 */
export async function batchSubmitJobsPerSecond(
  baseUrl: string,
  apiKey: string,
  targetUrl: string,
  { batches, batchSize, inFlight }: { batches: number; batchSize: number; inFlight: number },
): Promise<number> {
  const pool = new Pool(baseUrl, { connections: inFlight, pipelining: 1 });
  const body = JSON.stringify({ requests: Array.from({ length: batchSize }, () => ({ url: targetUrl })) });
  let next = 0;
  const started = performance.now();
  try {
    await inParallel(inFlight, async () => {
      while (next < batches) {
        next++;
        const res = await pool.request({
          path: '/v1/scrape/batch',
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
          body,
        });
        const answer = await res.body.text();
        if (res.statusCode !== 202)
          throw new Error(`batch answered ${res.statusCode}: ${answer.slice(0, 300)}`);
      }
    });
    return (batches * batchSize) / ((performance.now() - started) / 1000);
  } finally {
    await pool.close();
  }
}

/**
 * End to end with clients that wait instead of re-polling: `jobs` async scrapes submitted (50
 * submitters), each then held by one `?wait=` request until it ends (up to `waiters` at once, on
 * `waitClient`, whose connections they hold). Throughput = jobs / (first submit → last answer).
 */
export async function endToEndWithWait(
  client: ApiClient,
  waitClient: ApiClient,
  targetUrl: string,
  jobs: number,
  waiters = 200,
): Promise<number> {
  const started = performance.now();
  const submissions = submitAll(client, targetUrl, jobs);
  const { ids } = submissions;
  let next = 0;
  const waiting = inParallel(waiters, async () => {
    for (;;) {
      const id = ids[next];
      if (id === undefined) {
        if (submissions.done && next >= ids.length) return;
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      next++;
      let status: JobStatus = 'queued';
      while (!isTerminal(status)) status = (await waitClient.wait(id, 30)).status;
      if (status !== 'completed') throw new Error(`job ${id} ended ${status}`);
    }
  });
  await Promise.all([submissions.finished, waiting]);
  return jobs / ((performance.now() - started) / 1000);
}

/**
 * One job at a time on an idle system, each waited for with `?wait=` right after its 202: the time
 * from its terminal status change (its `updated_at`, set by the statement that ended it, so the
 * figure also holds the rest of that transaction and its commit) to the wait's answer arriving.
 */
export async function waitLatency(client: ApiClient, targetUrl: string, samples: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < samples; i++) {
    const id = await client.submit(targetUrl);
    let answer = await client.wait(id, 30);
    while (!isTerminal(answer.status)) answer = await client.wait(id, 30);
    latencies.push(answer.arrivedAt - answer.updatedAt);
  }
  return latencies;
}
