import { ApiKeyCache } from '../src/jobs/api-key-cache';
import { hashApiKey, insertApiKey } from '../src/db/api-keys';
import { migrateToLatest } from '../src/admin/migrate';
import { openStore, type Store } from '../src/db/pool';
import { createTestDatabase } from './helpers/database';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let store: Store;
const hashes: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  store = openStore(database.url, { max: 4, prepareStatements: true });
  await migrateToLatest(store.db);
  for (const name of ['one', 'two', 'three']) {
    await insertApiKey(store.db, name, `${name}-secret-key`);
    hashes.push(hashApiKey(`${name}-secret-key`));
  }
});

afterAll(async () => {
  await store?.close();
  await database?.drop();
});

describe('the API key cache', () => {
  test('requests that miss on one key at once share one lookup', async () => {
    const cache = new ApiKeyCache(store.db, 60_000);
    const found = await Promise.all(Array.from({ length: 20 }, () => cache.find(hashes[0]!)));
    expect(found.every((identity) => identity?.name === 'one')).toBe(true);
    expect(cache.lookups).toBe(1);
    await cache.find(hashes[0]!);
    expect(cache.lookups).toBe(1);
  });

  test('a key that is not valid is not remembered: each request for it looks again', async () => {
    const cache = new ApiKeyCache(store.db, 60_000);
    const guess = hashApiKey('a-guessed-key');
    expect(await cache.find(guess)).toBeUndefined();
    expect(cache.wasValid(guess)).toBe(false);
    expect(await cache.find(guess)).toBeUndefined();
    expect(cache.lookups).toBe(2);
  });

  test('a key looked up once was valid however long ago, until the cache is cleared', async () => {
    const cache = new ApiKeyCache(store.db, 1);
    await cache.find(hashes[0]!);
    await new Promise((resolve) => setTimeout(resolve, 20)); // past its TTL
    expect(cache.wasValid(hashes[0]!)).toBe(true);
    cache.clear();
    expect(cache.wasValid(hashes[0]!)).toBe(false);
  });

  test('past its bound the cache drops the least recently used key, not every key', async () => {
    const cache = new ApiKeyCache(store.db, 60_000, 2);
    await cache.find(hashes[0]!);
    await cache.find(hashes[1]!);
    await cache.find(hashes[0]!); // now the most recently used
    await cache.find(hashes[2]!);
    expect(hashes.map((hash) => cache.wasValid(hash))).toEqual([true, false, true]);
  });
});
