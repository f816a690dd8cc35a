import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { DEFERRED_STEPS_LOCK, migrateToLatest } from '../src/admin/migrate';
import { openStore, type Store } from '../src/db/pool';
import { createTestDatabase } from './helpers/database';

const FILL = '0010_reporting: fill scrape_jobs.batch_id';
const INDEX = '0010_reporting: scrape_jobs_key_created_idx includes status';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let store: Store;
let keyId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  store = openStore(database.url, { max: 2 });
  await migrateToLatest(store.db);
  keyId = randomUUID();
  await sql`insert into omniscrape.api_keys (id, name, key_hash, key_prefix) values (${keyId}, 'k', 'h', 'p')`.execute(
    store.db,
  );
});
afterAll(async () => {
  await store?.close();
  await database?.drop();
});

const query = async <T>(text: string, parameters: unknown[] = []): Promise<T[]> =>
  (await store.pool.query(text, parameters)).rows;

/** The history's indexes on (api_key_id, created_at), by name, with their definitions. */
const keyCreatedIndexes = () =>
  query<{ indexname: string; indexdef: string }>(
    `select indexname, indexdef from pg_indexes
      where schemaname = 'omniscrape' and indexname like 'scrape_jobs_key_created%' order by indexname`,
  );

/** Puts a deferred step back to pending, as right after migration 0010 committed. */
const pending = (name: string) =>
  query('update omniscrape.deferred_steps set done_at = null where name = $1', [name]);

describe('migration 0010, after its commit', () => {
  test('the jobs of batches made before it get their batch_id, in short batches, and other jobs keep none', async () => {
    // As before 0010: batches with their jobs listed in batch_jobs only (more jobs than one fill batch).
    const batches = [randomUUID(), randomUUID(), randomUUID()];
    for (const [i, batchId] of batches.entries()) {
      const size = [6_000, 3, 4_000][i]!;
      await query(`insert into omniscrape.batches (id, api_key_id, job_count) values ($1, $2, $3)`, [
        batchId,
        keyId,
        size,
      ]);
      await query(
        `with jobs as (
           insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status)
           select gen_random_uuid(), $2, 'async', 'http://example.com/' || n, 'example.com', 'GET', 'raw', 30, 'completed'
             from generate_series(1, $3) n
           returning id
         )
         insert into omniscrape.batch_jobs (batch_id, position, job_id)
         select $1, row_number() over () - 1, id from jobs`,
        [batchId, keyId, size],
      );
    }
    await query(
      `insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status)
       select gen_random_uuid(), $1, 'sync', 'http://example.com/alone', 'example.com', 'GET', 'raw', 30, 'completed'
         from generate_series(1, 5)`,
      [keyId],
    );
    await pending(FILL);

    expect(await migrateToLatest(store.db)).toEqual([FILL]);
    const mismatched = await query<{ n: string }>(
      `select count(*) as n from omniscrape.batch_jobs b join omniscrape.scrape_jobs j on j.id = b.job_id
        where j.batch_id is distinct from b.batch_id`,
    );
    expect(mismatched).toEqual([{ n: '0' }]);
    expect(
      await query(
        `select count(*) as n from omniscrape.scrape_jobs where url like '%/alone' and batch_id is null`,
      ),
    ).toEqual([{ n: '5' }]);
    expect(await query(`select count(*) as n from omniscrape.deferred_steps where done_at is null`)).toEqual([
      { n: '0' },
    ]);
    // Done is done: the next start has nothing left to run.
    expect(await migrateToLatest(store.db)).toEqual([]);
  });

  test('the key index carries the status, rebuilt under its own name; a rebuild cut short before its swap is finished', async () => {
    expect(await keyCreatedIndexes()).toEqual([
      {
        indexname: 'scrape_jobs_key_created_idx',
        indexdef: expect.stringMatching(/\(api_key_id, created_at\) INCLUDE \(status\)$/),
      },
    ]);
    // As if a run had built the new index and stopped before swapping it for the old one.
    await query('drop index omniscrape.scrape_jobs_key_created_idx');
    await query(
      'create index scrape_jobs_key_created_idx on omniscrape.scrape_jobs (api_key_id, created_at)',
    );
    await query(
      'create index scrape_jobs_key_created_status_idx on omniscrape.scrape_jobs (api_key_id, created_at) include (status)',
    );
    await pending(INDEX);

    expect(await migrateToLatest(store.db)).toEqual([INDEX]);
    expect(await keyCreatedIndexes()).toEqual([
      {
        indexname: 'scrape_jobs_key_created_idx',
        indexdef: expect.stringMatching(/\(api_key_id, created_at\) INCLUDE \(status\)$/),
      },
    ]);
  });

  test('a process that finds another one running the steps goes on without them', async () => {
    await pending(FILL);
    const other = await store.pool.connect();
    try {
      await other.query('select pg_advisory_lock($1)', [DEFERRED_STEPS_LOCK]);
      expect(await migrateToLatest(store.db)).toEqual([]);
    } finally {
      await other.query('select pg_advisory_unlock($1)', [DEFERRED_STEPS_LOCK]);
      other.release();
    }
    expect(await migrateToLatest(store.db)).toEqual([FILL]);
  });
});
