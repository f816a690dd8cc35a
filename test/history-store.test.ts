import { JOB_STATUSES } from '../src/contract/errors';
import { cancelBatchJobs } from '../src/db/batches';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { migrateToLatest } from '../src/admin/migrate';
import { openStore, type Store } from '../src/db/pool';
import { transactionWithSettings } from '../src/db/transactions';
import { MAX_INSERT_BYTES } from '../src/db/job-results';
import { STATUS_CHANGES } from '../src/db/job-status';
import type { Db, JobStatus, NewScrapeJob } from '../src/db/schema';
import {
  cancelScrapeJob,
  failAbandonedSyncScrapes,
  handBackScrapeJob,
  requeueScrapeJobs,
  timeOutLostScrapeJob,
} from '../src/db/scrape-jobs';
import { lockAndCountKeySlots } from '../src/db/statements/lock-and-count-key-slots';
import { startScrapeAttempts } from '../src/db/statements/start-scrape-attempts';
import { lostJobOutcome, storedResult, successBody } from '../src/jobs/outcome';
import {
  finishDocument,
  finishKey,
  finishScrapeJobs,
  finishSyncScrapeJob,
  type JobFinish,
} from '../src/db/statements/finish-scrape-jobs';
import { createTestDatabase } from './helpers/database';
import { waitFor } from './helpers/wait';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let store: Store;
let keyId: string;
/** An async job's heartbeat counts for a minute, a sync scrape's lease for 10 s. */
const LEASES = { asyncSeconds: 60, syncSeconds: 10 };

beforeAll(async () => {
  database = await createTestDatabase();
  store = openStore(database.url, { max: 4, prepareStatements: true });
  await migrateToLatest(store.db);
  keyId = randomUUID();
  await store.db
    .insertInto('omniscrape.api_keys')
    .values({ id: keyId, name: 'k', key_hash: 'h', key_prefix: 'p' })
    .execute();
});
afterAll(async () => {
  await store?.close();
  await database?.drop();
});

/** Inserts a history row (by default an async job `processing` at attempt 1) and returns its id. */
async function insertJob(row: Partial<NewScrapeJob> = {}, db: Db = store.db): Promise<string> {
  const id = row.id ?? randomUUID();
  await db
    .insertInto('omniscrape.scrape_jobs')
    .values({
      id,
      api_key_id: keyId,
      kind: 'async',
      url: 'http://127.0.0.1/',
      host: '127.0.0.1',
      method: 'GET',
      format: 'html',
      timeout_seconds: 30,
      status: 'processing',
      attempts: 1,
      heartbeat_at: new Date(),
      ...row,
    })
    .execute();
  return id;
}

const processingJob = () => insertJob();

const completed = (id: string, attempt = 1): JobFinish => ({
  id,
  attempt,
  status: 'completed',
  target_status_code: 200,
  error_code: null,
  error_message: null,
  charged: 1,
  result_bytes: 1,
  elapsed_ms: 1,
  engine: 'http',
  result_expires_at: new Date(Date.now() + 60_000),
});

const prices = { pricePerScrape: 0.0035, pricePerRender: 0.01 };

describe('job outcomes and results', () => {
  test("a page's result is stored as the same JSON the sync call answers, whether it rides in the batch statement or goes alone", async () => {
    // Quotes, backslashes, a control character, U+2028, a non-BMP character and a replaced NUL.
    const awkward = 'say "hi" \\ path\\to \t tab \u2028 line 😀 \uFFFD end ';
    const small = successBody(
      {
        page: {
          content: awkward,
          status_code: 200,
          headers: { 'content-type': 'text/plain', 'x-q': 'a"b' },
          final_url: 'http://127.0.0.1/a?b="c"',
        },
        engine: 'http',
      },
      12,
      prices,
    );
    const large = successBody(
      {
        page: {
          content: awkward.repeat(Math.ceil((MAX_INSERT_BYTES * 1.2) / awkward.length)),
          status_code: 404,
          headers: {},
          final_url: 'http://127.0.0.1/big',
        },
        engine: 'http',
      },
      34,
      prices,
    );
    const [smallId, largeId] = [await processingJob(), await processingJob()];
    // The small one fits the statement's share; the large one passes it and follows in its own INSERT.
    await finishScrapeJobs(store.db, [
      { finish: completed(smallId), result: storedResult(small) },
      { finish: completed(largeId), result: storedResult(large) },
    ]);
    const stored = await store.db
      .selectFrom('omniscrape.job_results')
      .select(['job_id', sql<string>`result::text`.as('json')])
      .where('job_id', 'in', [smallId, largeId])
      .execute();
    const byId = new Map(stored.map((r) => [r.job_id, JSON.parse(r.json)]));
    expect(byId.get(smallId)).toEqual(JSON.parse(JSON.stringify(small)));
    expect(byId.get(largeId)).toEqual(JSON.parse(JSON.stringify(large)));
  });

  test("a batch of outcomes stores each applied job's result with it, beyond one statement's share too", async () => {
    const ids = await Promise.all([1, 2, 3].map(() => processingJob()));
    const failedId = await processingJob();
    const big = (n: number) => ({
      json: JSON.stringify({ n, data: {} }),
      content: 'x'.repeat(Math.ceil(MAX_INSERT_BYTES * 0.6)),
    });
    const applied = await finishScrapeJobs(store.db, [
      ...ids.map((id, n) => ({ finish: completed(id), result: big(n) })),
      {
        finish: {
          ...completed(failedId),
          status: 'failed' as const,
          error_code: 'TARGET_UNREACHABLE',
          error_message: 'no',
        },
      },
    ]);
    expect(applied.sort()).toEqual([...ids, failedId].map((id) => finishKey(id, 1)).sort());
    const stored = await store.db
      .selectFrom('omniscrape.job_results')
      .select(['job_id', sql<number>`(result->>'n')::int`.as('n')])
      .where('job_id', 'in', [...ids, failedId])
      .execute();
    expect(new Map(stored.map((r) => [r.job_id, r.n]))).toEqual(new Map(ids.map((id, n) => [id, n])));
  });

  test('an outcome for another attempt is not applied, and its result is not stored', async () => {
    const small = (n: number) => ({ json: JSON.stringify({ n, data: {} }), content: '' });
    const id = await processingJob();
    const stale = completed(id, 7);
    expect(await finishScrapeJobs(store.db, [{ finish: stale, result: small(1) }])).toEqual([]);
    // The same when it follows a large result in its batch (its result then goes in its own INSERT).
    const other = await processingJob();
    const applied = await finishScrapeJobs(store.db, [
      { finish: completed(other), result: { json: '{"data":{}}', content: 'y'.repeat(MAX_INSERT_BYTES) } },
      { finish: stale, result: small(2) },
    ]);
    expect(applied).toEqual([finishKey(other, 1)]);
    const stored = await store.db
      .selectFrom('omniscrape.job_results')
      .select('job_id')
      .where('job_id', 'in', [id, other])
      .execute();
    expect(stored.map((r) => r.job_id)).toEqual([other]);
    const row = await store.db
      .selectFrom('omniscrape.scrape_jobs')
      .select('status')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('processing');
  });

  test('an outcome stores the engine that produced it, a job that ended without a scrape none, and no other engine is accepted', async () => {
    const [http, browser, lost, sync] = [
      await processingJob(),
      await processingJob(),
      await processingJob(),
      await insertJob({ kind: 'sync' }),
    ];
    await finishScrapeJobs(store.db, [
      { finish: completed(http) },
      { finish: { ...completed(browser), engine: 'browser' } },
      { finish: { ...completed(lost), ...lostJobOutcome('lost'), engine: null } },
    ]);
    expect(
      await finishSyncScrapeJob(store.db, sync, { status: 'completed', charged: 1, engine: 'browser' }),
    ).toBe(true);
    const rows = await store.db
      .selectFrom('omniscrape.scrape_jobs')
      .select(['id', 'engine'])
      .where('id', 'in', [http, browser, lost, sync])
      .execute();
    expect(new Map(rows.map((r) => [r.id, r.engine]))).toEqual(
      new Map([
        [http, 'http'],
        [browser, 'browser'],
        [lost, null],
        [sync, 'browser'],
      ]),
    );
    await expect(
      sql`update omniscrape.scrape_jobs set engine = 'chrome' where id = ${http}`.execute(store.db),
    ).rejects.toThrow(/scrape_jobs_engine_check/);
    // The check, added NOT VALID by migration 0014, was validated by its deferred step.
    const { rows: checks } = await sql<{ convalidated: boolean }>`
      select convalidated from pg_constraint where conname = 'scrape_jobs_engine_check'`.execute(store.db);
    expect(checks).toEqual([{ convalidated: true }]);
  });
});

describe('results beyond one statement', () => {
  test('the share of a statement is counted in bytes: multi-byte text that fits in characters but not in bytes goes alone, stored intact', async () => {
    // 3 bytes a character in UTF-8, 1 UTF-16 unit: half a share in characters, one and a half in bytes.
    const content = '€'.repeat(MAX_INSERT_BYTES / 2);
    const result = { json: JSON.stringify({ success: true, data: {} }), content };
    const id = await processingJob();
    const { json, later } = finishDocument([{ finish: completed(id), result }]);
    expect(later.map((l) => l.finish.id)).toEqual([id]);
    expect(Buffer.byteLength(json)).toBeLessThan(1_000);
    expect(await finishScrapeJobs(store.db, [{ finish: completed(id), result }])).toEqual([finishKey(id, 1)]);
    const stored = await store.db
      .selectFrom('omniscrape.job_results')
      .select(sql<string>`result->'data'->>'content'`.as('content'))
      .where('job_id', '=', id)
      .executeTakeFirstOrThrow();
    expect(stored.content).toBe(content);
  });
});

describe('status changes', () => {
  const ALL = JOB_STATUSES;
  const anHourAgo = () => new Date(Date.now() - 3_600_000);

  /** A job in `status` at attempt 1, started and last seen an hour ago. */
  const jobIn = (status: JobStatus, kind: 'sync' | 'async') =>
    insertJob({ status, kind, started_at: anHourAgo(), heartbeat_at: anHourAgo() });

  const statusOf = async (id: string) =>
    (
      await store.db
        .selectFrom('omniscrape.scrape_jobs')
        .select('status')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    ).status;

  /** Each status change of STATUS_CHANGES that moves an existing row, made on one job. */
  const changes: Record<
    string,
    { kind: 'sync' | 'async'; to: JobStatus; run: (id: string) => Promise<unknown> }
  > = {
    startScrapeAttempts: {
      kind: 'async',
      to: 'processing',
      run: (id) => startScrapeAttempts(store.db, [id]),
    },
    requeueScrapeJobs: { kind: 'async', to: 'queued', run: (id) => requeueScrapeJobs(store.db, [id]) },
    handBackScrapeJob: { kind: 'async', to: 'queued', run: (id) => handBackScrapeJob(store.db, id, 1) },
    finishScrapeJobs: {
      kind: 'async',
      to: 'completed',
      run: (id) => finishScrapeJobs(store.db, [{ finish: completed(id) }]),
    },
    timeOutLostScrapeJob: {
      kind: 'async',
      to: 'timed_out',
      run: (id) => timeOutLostScrapeJob(store.db, id, 'lost'),
    },
    failAbandonedSyncScrapes: {
      kind: 'sync',
      to: 'failed',
      run: () => failAbandonedSyncScrapes(store.db, 60, 60),
    },
    cancelScrapeJob: { kind: 'async', to: 'cancelled', run: (id) => cancelScrapeJob(store.db, id, keyId) },
    cancelBatchJobs: {
      kind: 'async',
      to: 'cancelled',
      run: async (id) => {
        const batchId = randomUUID();
        await store.db
          .insertInto('omniscrape.batches')
          .values({ id: batchId, api_key_id: keyId, job_count: 1 })
          .execute();
        await store.db
          .insertInto('omniscrape.batch_jobs')
          .values({ batch_id: batchId, position: 0, job_id: id })
          .execute();
        return cancelBatchJobs(store.db, batchId, keyId);
      },
    },
  };

  test('every change that moves a job is tested here, and each moves a job only from the statuses job-status.ts lists', async () => {
    const moving = Object.entries(STATUS_CHANGES).filter(([, change]) => change.from.length > 0);
    expect(Object.keys(changes).sort()).toEqual(moving.map(([name]) => name).sort());
    for (const [name, change] of moving) {
      const { kind, to, run } = changes[name]!;
      for (const status of ALL) {
        const id = await jobIn(status, kind);
        await run(id);
        const from: readonly JobStatus[] = change.from;
        expect({ name, status, now: await statusOf(id) }).toEqual({
          name,
          status,
          now: from.includes(status) ? to : status,
        });
      }
    }
  });

  test("a claim's start returns every column of the row, counting one attempt more", async () => {
    const id = await jobIn('queued', 'async');
    const [started] = await startScrapeAttempts(store.db, [id]);
    const row = await store.db
      .selectFrom('omniscrape.scrape_jobs')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(started).toEqual(row);
    expect(row).toMatchObject({ status: 'processing', attempts: 2 });
  });

  test('a hand-back is fenced to its attempt and does not count the interrupted one', async () => {
    const id = await jobIn('processing', 'async');
    expect(await handBackScrapeJob(store.db, id, 2)).toBe(false);
    expect(await handBackScrapeJob(store.db, id, 1)).toBe(true);
    expect(
      await store.db
        .selectFrom('omniscrape.scrape_jobs')
        .select(['status', 'attempts'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow(),
    ).toEqual({ status: 'queued', attempts: 0 });
  });

  test("a cancel racing a claim's start waits for the claim's commit and then refuses; a claim after a cancel starts nothing", async () => {
    const claimed = await jobIn('queued', 'async');
    let cancel: Promise<unknown> | undefined;
    await store.db.transaction().execute(async (trx) => {
      expect(await startScrapeAttempts(trx, [claimed])).toHaveLength(1);
      cancel = cancelScrapeJob(store.db, claimed, keyId);
      // The cancel waits on the claim's row lock while the claim is open.
      await waitFor(
        async () =>
          (
            await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
                where datname = current_database() and wait_event_type = 'Lock'
                  and query like '%set "status" = $1%'`.execute(store.db)
          ).rows[0]!.n === 1,
        { what: "the cancel to wait on the claim's row lock" },
      );
    });
    expect(await cancel).toBeUndefined();
    expect(await statusOf(claimed)).toBe('processing');

    const cancelled = await jobIn('queued', 'async');
    expect(await cancelScrapeJob(store.db, cancelled, keyId)).toMatchObject({ status: 'cancelled' });
    expect(await startScrapeAttempts(store.db, [cancelled])).toEqual([]);
    expect(await statusOf(cancelled)).toBe('cancelled');
  });

  test("a key cannot cancel another key's queued job", async () => {
    const id = await jobIn('queued', 'async');
    expect(await cancelScrapeJob(store.db, id, randomUUID())).toBeUndefined();
    expect(await statusOf(id)).toBe('queued');
  });

  test("a sync scrape's outcome ends its row once, as attempt 1", async () => {
    const id = await jobIn('processing', 'sync');
    const outcome = { status: 'failed' as const, error_code: 'X', error_message: 'x', charged: 0 };
    expect(await finishSyncScrapeJob(store.db, id, outcome)).toBe(true);
    expect(await finishSyncScrapeJob(store.db, id, { ...outcome, status: 'completed' })).toBe(false);
    expect(await statusOf(id)).toBe('failed');
  });
});

describe('key slots', () => {
  test("a key's count waits for the lock holder's commit and then sees its scrape", async () => {
    const first = await store.db.transaction().execute(async (a) => {
      const before = (await lockAndCountKeySlots(a, [keyId], [], LEASES)).get(keyId)!.processing;
      let secondDone = false;
      const second = store.db.transaction().execute(async (b) => {
        const slots = await lockAndCountKeySlots(b, [keyId], [], LEASES);
        secondDone = true;
        return slots.get(keyId)!.processing;
      });
      // Postgres itself says the second count is waiting on a lock (not merely slow to run).
      await waitFor(
        async () =>
          (
            await store.pool.query(
              `select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
            )
          ).rows.length > 0,
        { what: "the second count to wait on the key's lock" },
      );
      expect(secondDone).toBe(false);
      await insertJob({ kind: 'sync', heartbeat_at: null }, a);
      return { before, second };
    });
    expect(await first.second).toBe(first.before + 1);
  });

  test('scrapes whose heartbeat (async) or lease (sync) lapsed, the excepted jobs and other keys do not count', async () => {
    const otherKey = randomUUID();
    await store.db
      .insertInto('omniscrape.api_keys')
      .values({ id: otherKey, name: 'other', key_hash: 'h2', key_prefix: 'p', concurrency_limit: 3 })
      .execute();
    const count = async () => (await lockAndCountKeySlots(store.db, [otherKey], [], LEASES)).get(otherKey);
    expect(await count()).toEqual({ limit: 3, processing: 0 });
    const fresh = randomUUID();
    const rows = [
      [fresh, 'async', new Date()],
      [randomUUID(), 'async', new Date(Date.now() - 120_000)],
      [randomUUID(), 'sync', new Date(Date.now() - 2_000)],
      [randomUUID(), 'sync', new Date(Date.now() - 30_000)],
    ] as const;
    for (const [id, kind, heartbeat] of rows) {
      await insertJob({ id, api_key_id: otherKey, kind, heartbeat_at: heartbeat });
    }
    // The fresh async job and the sync scrape leased 2 s ago; not the ones 120 s and 30 s old.
    expect(await count()).toEqual({ limit: 3, processing: 2 });
    expect(
      (await lockAndCountKeySlots(store.db, [otherKey], [fresh], LEASES)).get(otherKey)!.processing,
    ).toBe(1);
    // The 3-argument form, which a release without sync leases calls during a rolling upgrade,
    // counts every sync scrape.
    const previous = await sql<{
      processing: string;
    }>`select processing from omniscrape.key_slots(${[otherKey]}::uuid[], '{}'::uuid[], 60)`.execute(
      store.db,
    );
    expect(Number(previous.rows[0]!.processing)).toBe(3);
  });
});

describe('transactions with settings', () => {
  const setting = async (db: Store['db']) =>
    (await sql<{ v: string }>`select current_setting('enable_sort') as v`.execute(db)).rows[0]!.v;

  test('settings hold inside the transaction only, and its writes commit', async () => {
    await sql`create table if not exists tx_items (id int primary key)`.execute(store.db);
    const inside = await transactionWithSettings(store.db, { enable_sort: 'off' }, async (trx) => {
      await sql`insert into tx_items values (1)`.execute(trx);
      return setting(trx);
    });
    expect(inside).toBe('off');
    for (let i = 0; i < 4; i++) expect(await setting(store.db)).toBe('on'); // every pooled connection
    expect((await sql`select id from tx_items`.execute(store.db)).rows).toEqual([{ id: 1 }]);
  });

  test('a throw rolls everything back, and a failed statement caught inside still fails the commit', async () => {
    await sql`create table if not exists tx_items (id int primary key)`.execute(store.db);
    await expect(
      transactionWithSettings(store.db, { enable_sort: 'off' }, async (trx) => {
        await sql`insert into tx_items values (2)`.execute(trx);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(
      transactionWithSettings(store.db, { enable_sort: 'off' }, async (trx) => {
        await sql`insert into tx_items values (3)`.execute(trx);
        await sql`insert into tx_items values (3)`.execute(trx).catch(() => undefined);
      }),
    ).rejects.toThrow(/rolled back/);
    expect(
      (await sql<{ id: number }>`select id from tx_items where id in (2, 3)`.execute(store.db)).rows,
    ).toEqual([]);
  });

  test('a setting Postgres refuses fails the call and leaves no transaction open on the connection', async () => {
    await expect(
      transactionWithSettings(store.db, { no_such_setting: 'on' }, () => Promise.resolve(1)),
    ).rejects.toThrow();
    for (let i = 0; i < 4; i++) {
      const { rows } = await sql<{
        n: string;
      }>`select count(*) as n from pg_stat_activity where pid = pg_backend_pid() and state like '%transaction%'`.execute(
        store.db,
      );
      expect(Number(rows[0]!.n)).toBe(0);
      expect(await setting(store.db)).toBe('on');
    }
  });

  test('only plain setting names and values are accepted', async () => {
    await expect(
      transactionWithSettings(store.db, { 'enable_sort = off; drop table tx_items; --': 'x' }, () =>
        Promise.resolve(1),
      ),
    ).rejects.toThrow(/not a plain setting/);
  });
});
