/**
 * `npm run bench:waiters [-- waiters]` — what a `?wait=` request costs the API process: opens N
 * requests (default 10,000) on N distinct queued jobs of an `omniscrape api` child process (no
 * worker runs, so every one of them waits), then reports the child's resident memory and open file
 * descriptors per waiter, against the same process with each job read once by a plain poll. Ends
 * by stopping the child, whose shutdown answers every wait.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../src/postgres-server/embedded-postgres';
import { freePort } from '../test/helpers/free-port';
import { startGateway } from './processes';

const WAITERS = Number(process.argv[2] ?? 10_000);
const KEY = 'bench-waiters-key-0001';
const OPEN_BATCH = 500;
const log = (line: string) => process.stderr.write(`[waiters] ${line}\n`);

const rssBytes = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
const openFds = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function call(baseUrl: string, method: string, route: string, body?: unknown): Promise<any> {
  const res = await fetch(baseUrl + route, {
    method,
    headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return res.json();
}

/** Runs `task` over `items`, `width` at a time. */
async function inParallel<T>(items: T[], width: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

/** One waiting request on its own connection; resolves with the status it was finally answered. */
function openWait(baseUrl: string, jobId: string): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get(
      `${baseUrl}/v1/jobs/${jobId}?wait=60`,
      { agent: false, headers: { 'x-api-key': KEY } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(String(JSON.parse(text)?.data?.status ?? res.statusCode)));
      },
    );
    req.on('error', (err) => resolve(`error: ${err.message}`));
  });
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-waiters-'));
  const postgres = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    persistent: false,
  });
  const api = await startGateway(
    postgres.url,
    {
      OMNISCRAPE_API_KEYS: `bench:${KEY}`,
      OMNISCRAPE_DEFAULT_MAX_QUEUED: String(WAITERS * 2),
      // Every waiter is one key's held request: the caps must let them all in.
      OMNISCRAPE_MAX_STREAMS_PER_KEY: String(WAITERS),
      OMNISCRAPE_MAX_STREAMS: String(WAITERS),
    },
    [],
    'api',
  );
  const pid = api.process.pid!;
  try {
    const jobIds: string[] = [];
    await inParallel(Array.from({ length: WAITERS }), 64, async () => {
      jobIds.push(
        (await call(api.baseUrl, 'POST', '/v1/scrape/async', { url: 'http://127.0.0.1:9/never' })).job_id,
      );
    });
    // Every job read once, so the baseline has served the same statements and routes.
    await inParallel(jobIds, 64, (id) => call(api.baseUrl, 'GET', `/v1/jobs/${id}`));
    await sleep(2_000);
    const before = { rss: rssBytes(pid), fds: openFds(pid) };
    const answers: Promise<string>[] = [];
    for (let i = 0; i < jobIds.length; i += OPEN_BATCH) {
      for (const id of jobIds.slice(i, i + OPEN_BATCH)) answers.push(openWait(api.baseUrl, id));
      await sleep(50);
    }
    for (let i = 0; i < 100 && openFds(pid) < before.fds + WAITERS; i++) await sleep(100);
    await sleep(2_000);
    const during = { rss: rssBytes(pid), fds: openFds(pid) };
    const perWaiter = {
      waiters: WAITERS,
      rss_before_mb: +(before.rss / 2 ** 20).toFixed(1),
      rss_waiting_mb: +(during.rss / 2 ** 20).toFixed(1),
      rss_bytes_per_waiter: Math.round((during.rss - before.rss) / WAITERS),
      fds_before: before.fds,
      fds_waiting: during.fds,
      fds_per_waiter: +((during.fds - before.fds) / WAITERS).toFixed(3),
    };
    log('stopping the API process: its shutdown answers every wait');
    await api.stop();
    const statuses = await Promise.all(answers);
    const answered = statuses.filter((s) => s === 'queued').length;
    process.stdout.write(`${JSON.stringify({ ...perWaiter, answered_at_shutdown: answered }, null, 2)}\n`);
  } finally {
    await api.stop();
    await postgres.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
