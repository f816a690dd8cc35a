import { migrateToLatest } from '../src/store/migrate';
import { hashApiKey, upsertApiKey } from '../src/store/api-keys';
import { openStore, type Store } from '../src/store/pool';
import { createTestDatabase } from './helpers/database';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let store: Store;
beforeAll(async () => {
  database = await createTestDatabase();
  store = openStore(database.url, { max: 8 });
  await migrateToLatest(store.db);
});
afterAll(async () => {
  await store?.close();
  await database?.drop();
});

test('processes provisioning the same key at once all succeed, leaving one row', async () => {
  for (let round = 0; round < 60; round++) {
    const name = `together-${round}`;
    const key = `osk_provisioned_together_${round}`;
    const results = await Promise.all(Array.from({ length: 8 }, () => upsertApiKey(store.db, name, key)));
    expect(results).toEqual(Array(8).fill('provisioned'));
    const rows = await store.db
      .selectFrom('omniscrape.api_keys')
      .select(['name', 'key_hash'])
      .where('name', '=', name)
      .execute();
    expect(rows).toEqual([{ name, key_hash: hashApiKey(key) }]);
  }
});

test('a key already provisioned under another name is still refused', async () => {
  await upsertApiKey(store.db, 'first-owner', 'osk_shared_value_1');
  await expect(upsertApiKey(store.db, 'second-owner', 'osk_shared_value_1')).rejects.toThrow(
    /api_keys_key_hash_key/,
  );
});
