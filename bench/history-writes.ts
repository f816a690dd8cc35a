/**
 * `npm run bench:history [-- jobs]` — the history table's write path alone: statement time per
 * job to insert, start and finish jobs with the service's own store functions, in batches of the
 * sizes the gateway's profiles show (submits of 50, claims of 24, settles of 19, each with a ~2 KB
 * result), with a steady backlog of 2,000 queued and 1,000 processing jobs. One connection,
 * nothing else running, so index and heap costs show without the noise of a busy machine. It
 * compares the current schema with the index it had before migration 0004 (`(status, updated_at)`
 * for unfinished jobs) and with `scrape_jobs_key_created_idx` as it was before migration 0010
 * (without `status` included), in alternating runs (each run in another order); medians of 3.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { migrateToLatest } from '../src/admin/migrate';
import { openStore, type Store } from '../src/db/pool';
import { startEmbeddedPostgres } from '../src/postgres-server/embedded-postgres';
import { insertScrapeJobs } from '../src/db/scrape-jobs';
import { finishScrapeJobs } from '../src/db/statements/finish-scrape-jobs';
import { startScrapeAttempts } from '../src/db/statements/start-scrape-attempts';
import { freePort } from '../test/helpers/free-port';

const JOBS = Number(process.argv[2] ?? 30_000);
const RUNS = 3;
const log = (line: string) => process.stderr.write(`[history] ${line}\n`);
const RESULT = { json: JSON.stringify({ success: true, data: {} }), content: 'x'.repeat(2_000) };

const VARIANTS = ['before_0004', 'before_0010', 'current'] as const;
type Variant = (typeof VARIANTS)[number];

async function prepare(store: Store, variant: Variant): Promise<string> {
  await migrateToLatest(store.db);
  if (variant === 'before_0004') {
    await sql`create index scrape_jobs_unfinished_idx on omniscrape.scrape_jobs (status, updated_at) where status in ('queued', 'processing')`.execute(
      store.db,
    );
  }
  if (variant === 'before_0010') {
    await sql`drop index omniscrape.scrape_jobs_key_created_idx`.execute(store.db);
    await sql`create index scrape_jobs_key_created_idx on omniscrape.scrape_jobs (api_key_id, created_at)`.execute(
      store.db,
    );
  }
  const keyId = randomUUID();
  await store.db
    .insertInto('omniscrape.api_keys')
    .values({ id: keyId, name: 'bench', key_hash: 'h', key_prefix: 'p' })
    .execute();
  return keyId;
}

type Spent = { insert: number; start: number; finish: number; wal: number };
const STEPS = ['insert', 'start', 'finish', 'wal'] as const;

const walPosition = async (store: Store) =>
  (await sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`.execute(store.db)).rows[0]!.lsn;

/**
 * Microseconds of statement time per job for each step, and bytes of WAL per job: a figure that a
 * busy machine does not blur, for the index entries and row versions the steps write.
 */
async function run(store: Store, keyId: string): Promise<Spent> {
  const walBefore = await walPosition(store);
  const ids = Array.from({ length: JOBS }, () => randomUUID());
  const spent = { insert: 0, start: 0, finish: 0 };
  const timed = async (step: keyof typeof spent, fn: () => Promise<unknown>) => {
    const t = process.hrtime.bigint();
    await fn();
    spent[step] += Number(process.hrtime.bigint() - t) / 1e3;
  };
  let inserted = 0;
  let started = 0;
  let finished = 0;
  while (finished < JOBS) {
    if (inserted < JOBS && inserted - started < 2_000) {
      const batch = ids.slice(inserted, inserted + 50);
      await timed('insert', () =>
        insertScrapeJobs(
          store.db,
          batch.map((id) => ({
            id,
            api_key_id: keyId,
            url: 'http://127.0.0.1/2kb',
            host: '127.0.0.1',
            method: 'GET',
            format: 'raw',
            timeout_seconds: 30,
            created_at: new Date(),
          })),
        ),
      );
      inserted += batch.length;
    } else if (started < inserted && started - finished < 1_000) {
      const batch = ids.slice(started, Math.min(started + 24, inserted));
      await timed('start', () => startScrapeAttempts(store.db, batch));
      started += batch.length;
    } else {
      const batch = ids.slice(finished, Math.min(finished + 19, started));
      const expires = new Date(Date.now() + 86_400_000);
      await timed('finish', () =>
        finishScrapeJobs(
          store.db,
          batch.map((id) => ({
            finish: {
              id,
              attempt: 1,
              status: 'completed',
              target_status_code: 200,
              engine: 'http',
              error_code: null,
              error_message: null,
              charged: 0.001,
              result_bytes: 2_000,
              elapsed_ms: 1,
              result_expires_at: expires,
            },
            result: RESULT,
          })),
        ),
      );
      finished += batch.length;
    }
  }
  const { rows } = await sql<{ bytes: string }>`
    select pg_wal_lsn_diff(pg_current_wal_lsn(), ${walBefore}::pg_lsn)::text as bytes`.execute(store.db);
  return {
    insert: spent.insert / JOBS,
    start: spent.start / JOBS,
    finish: spent.finish / JOBS,
    wal: Number(rows[0]!.bytes) / JOBS,
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-history-'));
  fs.chmodSync(dir, 0o755);
  const postgres = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    persistent: false,
  });
  const results = Object.fromEntries(
    VARIANTS.map((variant) => [variant, { insert: [], start: [], finish: [], wal: [] }]),
  ) as unknown as Record<Variant, Record<keyof Spent, number[]>>;
  try {
    const admin = openStore(postgres.url, { max: 1 });
    try {
      for (let i = 1; i <= RUNS; i++) {
        // Each run starts with another variant, so none always runs last, on the busiest server.
        for (const variant of VARIANTS.map((_, k) => VARIANTS[(k + i) % VARIANTS.length]!)) {
          const name = `history_${variant}_${i}`;
          await sql.raw(`create database ${name}`).execute(admin.db);
          const url = new URL(postgres.url);
          url.pathname = `/${name}`;
          const store = openStore(url.toString(), { max: 1, prepareStatements: true });
          try {
            log(`${variant}, ${JOBS} jobs (run ${i}/${RUNS})`);
            const spent = await run(store, await prepare(store, variant));
            for (const step of STEPS) results[variant][step].push(spent[step]);
          } finally {
            await store.close();
            await sql.raw(`drop database ${name}`).execute(admin.db);
          }
        }
      }
    } finally {
      await admin.close();
    }
  } finally {
    await postgres.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(
    `\nhistory write path, µs of statement time per job (median of ${RUNS}, ${JOBS} jobs each)\n`,
  );
  process.stdout.write(
    `  ${'schema'.padEnd(14)}${['insert', 'start', 'finish', 'total', 'WAL B/job'].map((h) => h.padStart(10)).join('')}\n`,
  );
  for (const variant of VARIANTS) {
    const [insert, start, finish, wal] = STEPS.map((step) => median(results[variant][step]));
    process.stdout.write(
      `  ${variant.padEnd(14)}${[insert!, start!, finish!, insert! + start! + finish!, wal!].map((v) => v.toFixed(1).padStart(10)).join('')}\n`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
