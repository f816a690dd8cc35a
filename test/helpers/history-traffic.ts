import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { PgBoss } from 'pg-boss';

/** One request of the traffic and how long it took, client-side (its lock waits included). */
export interface TimedRequest {
  what: string;
  ms: number;
}

/** A statement of the traffic seen waiting for a lock, and for how long it had waited then. */
export interface LockWait {
  query: string;
  waitedMs: number;
}

export interface HistoryTraffic {
  /** Every request so far. */
  readonly requests: TimedRequest[];
  /** The longest lock wait of each of the traffic's statements seen waiting, as sampled. */
  readonly lockWaits: LockWait[];
  stop(): Promise<void>;
}

const APPLICATION_NAME = 'omniscrape-history-traffic';
const QUEUE = 'history-traffic';
/** How often pg_stat_activity is read for the traffic's statements waiting on a lock. */
const LOCK_SAMPLE_MS = 50;
/** Each client's pause between rounds: a steady flow of jobs rather than all the CPU the test has. */
const ROUND_PAUSE_MS = 50;

/**
 * What a running release of the service does to the history while a newer release migrates the
 * database: `clients` loops, each submitting a job (a history row and a pg-boss job), claiming one
 * (pg-boss's fetch, the row to processing, its key's slots counted by omniscrape.key_slots),
 * completing it (the row, its result, pg-boss's complete), and reading the key's newest jobs and
 * its counts by status for the last day, as the API and the dashboard do. It writes only the
 * columns of migration 0009's schema, as a process of that release would. Every request is timed;
 * a sampler reads which of its statements wait for a lock, and for how long.
 */
export async function startHistoryTraffic(
  databaseUrl: string,
  apiKeyId: string,
  clients = 3,
): Promise<HistoryTraffic> {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: clients + 1,
    application_name: APPLICATION_NAME,
  });
  const boss = new PgBoss({
    connectionString: databaseUrl,
    application_name: APPLICATION_NAME,
    max: clients,
    supervise: false,
    schedule: false,
  });
  boss.on('error', () => undefined);
  await boss.start();
  await boss.createQueue(QUEUE);

  const requests: TimedRequest[] = [];
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await fn();
    } finally {
      requests.push({ what, ms: performance.now() - started });
    }
  };
  const query = (what: string, text: string, values: unknown[]) =>
    timed(what, () => pool.query(text, values));

  const submit = async () => {
    const id = randomUUID();
    await query(
      'insert a queued job',
      `insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status)
       values ($1, $2, 'async', 'http://example.com/traffic', 'example.com', 'GET', 'raw', 30, 'queued')`,
      [id, apiKeyId],
    );
    await timed('pg-boss send', () => boss.send(QUEUE, { id }));
  };
  const work = async () => {
    const [job] = await timed('pg-boss fetch', () => boss.fetch<{ id: string }>(QUEUE));
    if (!job) return;
    await query(
      'count the key slots',
      `select * from omniscrape.key_slots($1::uuid[], '{}'::uuid[], 60, 60)`,
      [[apiKeyId]],
    );
    await query(
      'start the job',
      `update omniscrape.scrape_jobs set status = 'processing', attempts = attempts + 1, started_at = now(),
              heartbeat_at = now(), updated_at = now() where id = $1`,
      [job.data.id],
    );
    await query(
      'complete the job',
      `with done as (
         update omniscrape.scrape_jobs set status = 'completed', target_status_code = 200, finished_at = now(),
                updated_at = now(), result_expires_at = now() + interval '1 day', charged = 0.001
          where id = $1 returning id, result_expires_at)
       insert into omniscrape.job_results (job_id, result, expires_at)
       select id, '{"content": "x"}', result_expires_at from done`,
      [job.data.id],
    );
    await timed('pg-boss complete', () => boss.complete(QUEUE, job.id));
  };
  const read = async () => {
    await query(
      "list the key's newest jobs",
      `select id, status, created_at from omniscrape.scrape_jobs where api_key_id = $1
        order by created_at desc limit 20`,
      [apiKeyId],
    );
    await query(
      "count the key's last day by status",
      `select status, count(*) from omniscrape.scrape_jobs
        where api_key_id = $1 and created_at > now() - interval '1 day' group by status`,
      [apiKeyId],
    );
  };

  let stopping = false;
  const loops = Array.from({ length: clients }, async () => {
    while (!stopping) {
      await submit();
      await work();
      await read();
      await new Promise((resolve) => setTimeout(resolve, ROUND_PAUSE_MS));
    }
  });
  const lockWaits: LockWait[] = [];
  const sampler = (async () => {
    const seen = new Map<string, LockWait>();
    while (!stopping) {
      const { rows } = await pool.query<{ key: string; query: string; waited_ms: number }>(
        `select pid || '/' || query_start as key, query,
                extract(epoch from clock_timestamp() - query_start) * 1000 as waited_ms
           from pg_stat_activity
          where application_name = $1 and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
        [APPLICATION_NAME],
      );
      for (const row of rows) {
        const wait = seen.get(row.key) ?? { query: row.query, waitedMs: 0 };
        wait.waitedMs = Math.max(wait.waitedMs, Number(row.waited_ms));
        if (!seen.has(row.key)) lockWaits.push(wait);
        seen.set(row.key, wait);
      }
      await new Promise((resolve) => setTimeout(resolve, LOCK_SAMPLE_MS));
    }
  })();

  return {
    requests,
    lockWaits,
    async stop() {
      stopping = true;
      try {
        await Promise.all([...loops, sampler]);
      } finally {
        await boss.stop({ graceful: false });
        await pool.end();
      }
    },
  };
}
