import { migrateToLatest } from '../src/admin/migrate';
import { hashApiKey, insertApiKey, upsertApiKey } from '../src/db/api-keys';
import { openStore, type Store } from '../src/db/pool';
import { createTestDatabase } from './helpers/database';
import { startTestService } from './helpers/service';

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

describe('provisioning from settings and keys that exist', () => {
  const digestOf = async (name: string) =>
    (
      await store.db
        .selectFrom('omniscrape.api_keys')
        .select('key_hash')
        .where('name', '=', name)
        .executeTakeFirstOrThrow()
    ).key_hash;

  test("an admin key's value is never replaced: provisioning leaves it and says so", async () => {
    await insertApiKey(store.db, 'ops-admin', 'osk_the_admin_value_0000001', { admin: true });
    expect(await upsertApiKey(store.db, 'ops-admin', 'osk_another_value_00000001')).toBe('admin-kept');
    expect(await digestOf('ops-admin')).toBe(hashApiKey('osk_the_admin_value_0000001'));
    expect(await upsertApiKey(store.db, 'ops-admin', 'osk_the_admin_value_0000001')).toBe('provisioned');
  });

  test('a plain key given a new value answers to it, and says it replaced the old one', async () => {
    expect(await upsertApiKey(store.db, 'plain', 'osk_first_plain_value_0001')).toBe('provisioned');
    expect(await upsertApiKey(store.db, 'plain', 'osk_second_plain_value_001')).toBe('replaced');
    expect(await digestOf('plain')).toBe(hashApiKey('osk_second_plain_value_001'));
  });

  test('a service whose OMNISCRAPE_API_KEYS gives an admin key another value refuses to start, naming it', async () => {
    await insertApiKey(store.db, 'root-admin', 'osk_root_admin_value_00001', { admin: true });
    await expect(
      startTestService({
        databaseUrl: database.url,
        roles: { api: true, worker: false },
        env: { OMNISCRAPE_API_KEYS: 'root-admin:osk_not_the_admin_value_0001' },
      }),
    ).rejects.toThrow(/"root-admin" is an admin key, which settings never replace/);
    expect(await digestOf('root-admin')).toBe(hashApiKey('osk_root_admin_value_00001'));
  });
});
