import type { ApiKeyIdentity } from '../api-keys';
import { namedStatement, runStatement } from '../prepared-statements';
import type { Db } from '../schema';

/** Every API request whose key is not cached runs this: one lookup on the unique hash. */
const FIND_ACTIVE_KEY_BY_HASH = namedStatement(
  'omniscrape_find_active_key_by_hash',
  `select id, name, concurrency_limit, max_queued, monthly_quota, webhook_url
     from omniscrape.api_keys
    where key_hash = $1 and revoked_at is null`,
);

/** The key whose hash (hashApiKey) this is, unless it is unknown or revoked. */
export async function findActiveKeyByHash(db: Db, keyHash: string): Promise<ApiKeyIdentity | undefined> {
  const [key] = await runStatement<ApiKeyIdentity>(db, FIND_ACTIVE_KEY_BY_HASH, [keyHash]);
  return key;
}
