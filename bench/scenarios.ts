import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { KeyRounds } from '../src/jobs/key-limits';
import { SCRAPE_QUEUE } from '../src/jobs/queue';

/** The backlog tenant's limits: concurrency 1. */
/** The backlog tenant's concurrency limit. */
const BACKLOG_CONCURRENCY = 1;

/** Raw pg-boss with a no-op handler and its best settings: the queue's ceiling on this machine. */
export async function pgbossNoopJobsPerSecond(databaseUrl: string, jobs: number): Promise<number> {
  const boss = new PgBoss({
    connectionString: databaseUrl,
    schema: 'bench_noop',
    supervise: false,
    schedule: false,
    registerInstance: false,
    max: 10,
  });
  boss.on('error', () => undefined);
  await boss.start();
  const queue = `noop-${randomUUID().slice(0, 8)}`;
  await boss.createQueue(queue);
  for (let i = 0; i < jobs; i += 5000) {
    await boss.insert(
      queue,
      Array.from({ length: Math.min(5000, jobs - i) }, () => ({ data: {} })),
    );
  }
  let done = 0;
  let finish!: () => void;
  const allDone = new Promise<void>((resolve) => (finish = resolve));
  const started = performance.now();
  await boss.work(
    queue,
    { batchSize: 250, localConcurrency: 2, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
    (batch) => {
      done += batch.length;
      if (done >= jobs) finish();
      return Promise.resolve();
    },
  );
  await allDone;
  const elapsed = (performance.now() - started) / 1000;
  await boss.stop({ graceful: false });
  return jobs / elapsed;
}

/** Waits until the gateway has no async job queued or processing (between scenarios). */
export async function waitForIdle(
  databaseUrl: string,
  exceptKeyId?: string,
  timeoutMs = 300_000,
): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const { rows } = await client.query(
        `select count(*)::int as n from omniscrape.scrape_jobs
          where kind = 'async' and status in ('queued', 'processing') and ($1::uuid is null or api_key_id <> $1::uuid)`,
        [exceptKeyId ?? null],
      );
      if (rows[0].n === 0) return;
      if (Date.now() > deadline)
        throw new Error(`${rows[0].n} async jobs still unfinished after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await client.end();
  }
}

/**
 * History and queue of a long-running installation: `finished` completed jobs in the history, and
 * `queued` jobs of another tenant waiting in the queue (its key at concurrency 1 on a slow page,
 * so they stay queued while the benchmark runs).
 */
export async function loadHistory(
  databaseUrl: string,
  finished: number,
  queued: number,
  slowUrl: string,
): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const boss = new PgBoss({
    connectionString: databaseUrl,
    schema: 'pgboss',
    supervise: false,
    schedule: false,
    registerInstance: false,
    migrate: false,
  });
  boss.on('error', () => undefined);
  try {
    const { rows } = await client.query(
      `insert into omniscrape.api_keys (name, key_hash, key_prefix, concurrency_limit) values ('backlog-tenant', md5(random()::text), 'osk_none', $1)
       on conflict (name) do update set concurrency_limit = $1 returning id`,
      [BACKLOG_CONCURRENCY],
    );
    const keyId: string = rows[0].id;
    for (let i = 0; i < finished; i += 100_000) {
      await client.query(
        `insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status,
                target_status_code, attempts, charged, result_bytes, elapsed_ms, created_at, started_at, finished_at, updated_at)
         select gen_random_uuid(), $1, 'async', 'http://example.com/p' || g, 'example.com', 'GET', 'raw', 30, 'completed',
                200, 1, 0.0035, 2048, 12, t, t, t, t
           from generate_series(1, $2) g, lateral (select now() - (g || ' seconds')::interval as t) ts`,
        [keyId, Math.min(100_000, finished - i)],
      );
    }
    await boss.start();
    const request = {
      url: slowUrl,
      method: 'GET',
      headers: {},
      timeout: 300,
      follow_redirects: true,
      format: 'raw',
      mode: 'auto',
    };
    const rounds = new KeyRounds(() => Promise.resolve(0)); // queued as into an empty queue
    for (let i = 0; i < queued; i += 10_000) {
      const ids = Array.from({ length: Math.min(10_000, queued - i) }, () => randomUUID());
      await client.query(
        `insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status)
         select id, $2, 'async', $3, '127.0.0.1', 'GET', 'raw', 300, 'queued' from unnest($1::uuid[]) id`,
        [ids, keyId, slowUrl],
      );
      // Queued as the API queues them: in rounds of the key's limit (KeyRounds).
      const priorities = await Promise.all(ids.map(() => rounds.priorityOf(keyId, BACKLOG_CONCURRENCY)));
      await boss.insert(
        SCRAPE_QUEUE,
        ids.map((id, n) => ({
          id,
          data: { jobId: id, request },
          group: { id: keyId, tier: String(BACKLOG_CONCURRENCY) },
          priority: priorities[n],
        })),
      );
    }
    await client.query('analyze');
    return keyId;
  } finally {
    await boss.stop({ graceful: false });
    await client.end();
  }
}
