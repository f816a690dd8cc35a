import { MAX_PREPARED_PER_CONNECTION, namedStatement, runStatement } from '../src/db/prepared-statements';
import { openStore, type Store } from '../src/db/pool';
import { createTestDatabase } from './helpers/database';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let store: Store;

beforeAll(async () => {
  database = await createTestDatabase();
  store = openStore(database.url, { max: 1, prepareStatements: true });
  await store.pool.query('create table items (id int primary key, label text)');
  await store.pool.query(`insert into items select g, 'item ' || g from generate_series(1, 100) g`);
});
afterAll(async () => {
  await store?.close();
  await database?.drop();
});

/** The statements prepared on the pool's one connection. */
async function prepared(): Promise<string[]> {
  const { rows } = await store.pool.query('select statement from pg_prepared_statements');
  return rows.map((r) => r.statement);
}

/** The names of the statements prepared on the pool's one connection. */
async function preparedNames(): Promise<string[]> {
  const { rows } = await store.pool.query('select name from pg_prepared_statements');
  return rows.map((r) => r.name);
}

/** Registered once for the file: a name belongs to one text for the life of the process. */
const LABEL_BY_ID = namedStatement(
  'omniscrape_test_label_by_id',
  'select label as named from items where id = $1',
);
/** The statements prepared automatically, under names hashed from their text. */
const automatic = async () => (await preparedNames()).filter((name) => !name.startsWith('omniscrape_test_'));

describe('prepared statements', () => {
  test('a repeated statement with parameters is prepared once per connection and answers every call', async () => {
    const text = 'select label from items where id = $1';
    for (const id of [1, 2, 3])
      expect((await store.pool.query(text, [id])).rows).toEqual([{ label: `item ${id}` }]);
    expect((await prepared()).filter((s) => s === text)).toHaveLength(1);
  });

  test('a named statement is prepared under its own name and answers through the query builder', async () => {
    for (const id of [7, 8])
      expect(await runStatement(store.db, LABEL_BY_ID, [id])).toEqual([{ named: `item ${id}` }]);
    expect(await preparedNames()).toContain('omniscrape_test_label_by_id');
  });

  test('a name belongs to one text and a text to one name, and a statement returning * cannot be named', () => {
    expect(() => namedStatement('omniscrape_test_label_by_id', 'select id from items where id = $1')).toThrow(
      /two statements named/,
    );
    expect(() => namedStatement('omniscrape_test_star', 'select * from items where id = $1')).toThrow(
      /returns \*/,
    );
    expect(() => namedStatement('Not A Name', 'select 1')).toThrow(/not a statement name/);
    expect(() => namedStatement('omniscrape_test_other', LABEL_BY_ID.text)).toThrow(/already named/);
  });

  test('bulk statements (many parameters) and statements with * are not prepared', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => i + 1);
    const bulk = `select count(*)::int as n from items where id in (${ids.map((_, i) => `$${i + 1}`).join(', ')})`;
    expect((await store.pool.query(bulk, ids)).rows).toEqual([{ n: 40 }]);
    const star = 'select * from items where id = $1';
    await store.pool.query(star, [1]);
    const count = 'select count(*)::int as n from items where id <= $1';
    await store.pool.query(count, [10]);
    const statements = await prepared();
    expect(statements).not.toContain(bulk);
    expect(statements).not.toContain(star);
    expect(statements).toContain(count); // count(*) names no columns
  });

  test('statements keep working after a migration adds a column', async () => {
    const named = 'select id, label from items where id = $1';
    const star = 'select * from items where id = $1';
    await store.pool.query(named, [5]);
    await store.pool.query(star, [5]);
    await store.pool.query('alter table items add column added_later int');
    expect((await store.pool.query(named, [5])).rows).toEqual([{ id: 5, label: 'item 5' }]);
    // Prepared, this would fail: "cached plan must not change result type".
    expect((await store.pool.query(star, [5])).rows).toEqual([{ id: 5, label: 'item 5', added_later: null }]);
  });

  test('a prepared statement whose result a migration changed fails once, then is prepared anew on the same connection', async () => {
    // A checked-out client, as Kysely uses them (the pool's own query() drops a client after an error).
    const client = await store.pool.connect();
    try {
      const hidden = 'with picked as (select * from items where id = $1) select * from picked';
      expect((await client.query(hidden, [6])).rows).toEqual([{ id: 6, label: 'item 6', added_later: null }]);
      await client.query('alter table items add column added_even_later int');
      await expect(client.query(hidden, [6])).rejects.toThrow('cached plan must not change result type');
      expect((await client.query(hidden, [6])).rows).toEqual([
        { id: 6, label: 'item 6', added_later: null, added_even_later: null },
      ]);
    } finally {
      client.release();
    }
  });

  test('a connection prepares a bounded number of statements; texts beyond it run unprepared and still answer', async () => {
    const texts = Array.from(
      { length: MAX_PREPARED_PER_CONNECTION + 20 },
      (_, n) => `select $1::int + ${n} as v`,
    );
    for (const [n, text] of texts.entries())
      expect((await store.pool.query(text, [1])).rows).toEqual([{ v: n + 1 }]);
    expect(await automatic()).toHaveLength(MAX_PREPARED_PER_CONNECTION);
    // Named statements are a fixed few and do not count against the cap: prepared even beyond it.
    const late = namedStatement('omniscrape_test_late', 'select $1::int * 2 as v');
    expect(await runStatement(store.db, late, [21])).toEqual([{ v: 42 }]);
    expect(await preparedNames()).toContain('omniscrape_test_late');
  });
});
