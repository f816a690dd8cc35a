import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './schema';

/** Notified when a key is revoked or its limits change: API processes forget the keys they cached. */
export const KEYS_CHANGED_CHANNEL = 'omniscrape_keys_changed';

/** Runs a change to keys and announces it with its commit (rare writes: a NOTIFY here costs nothing). */
async function changeKeys(db: Db, change: (trx: Db) => Promise<boolean>): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const changed = await change(trx);
    if (changed)
      await trx
        .selectNoFrom((eb) => eb.fn('pg_notify', [eb.val(KEYS_CHANGED_CHANNEL), eb.val('')]).as('notified'))
        .execute();
    return changed;
  });
}

/**
 * API keys are random 192-bit secrets, so a plain SHA-256 is the right hash: no salt or slow hash
 * is needed against guessing, and the lookup stays one indexed equality on the hash. The key itself
 * is never stored; `key_prefix` only helps people tell their keys apart.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function generateApiKey(): string {
  return `osk_${randomBytes(24).toString('base64url')}`;
}

const prefixOf = (key: string) => key.slice(0, 8);

export interface ApiKeyIdentity {
  id: string;
  name: string;
  /** The key's own limits; NULL falls back to the service defaults. */
  concurrency_limit: number | null;
  max_queued: number | null;
  monthly_quota: number | null;
  /** Where its jobs report their end when a submission names no webhook. */
  webhook_url: string | null;
}

export interface KeyLimitSettings {
  concurrency?: number | null;
  maxQueued?: number | null;
  monthlyQuota?: number | null;
  /** The key's default webhook URL. */
  webhookUrl?: string | null;
}

const IDENTITY_COLUMNS = [
  'id',
  'name',
  'concurrency_limit',
  'max_queued',
  'monthly_quota',
  'webhook_url',
] as const;

/** Creates a key under a new name (`admin`: it may open the dashboard); returns undefined when the name is taken. */
export async function insertApiKey(
  db: Db,
  name: string,
  key: string,
  limits: KeyLimitSettings & { admin?: boolean } = {},
): Promise<ApiKeyIdentity | undefined> {
  return db
    .insertInto('omniscrape.api_keys')
    .values({
      name,
      key_hash: hashApiKey(key),
      key_prefix: prefixOf(key),
      concurrency_limit: limits.concurrency ?? null,
      max_queued: limits.maxQueued ?? null,
      monthly_quota: limits.monthlyQuota ?? null,
      webhook_url: limits.webhookUrl ?? null,
      is_admin: limits.admin ?? false,
    })
    .onConflict((oc) => oc.column('name').doNothing())
    .returning(IDENTITY_COLUMNS)
    .executeTakeFirst();
}

/** Changes a key's limits (undefined: unchanged, null: back to the default). */
export async function updateApiKeyLimits(db: Db, name: string, limits: KeyLimitSettings): Promise<boolean> {
  const set = {
    ...(limits.concurrency !== undefined && { concurrency_limit: limits.concurrency }),
    ...(limits.maxQueued !== undefined && { max_queued: limits.maxQueued }),
    ...(limits.monthlyQuota !== undefined && { monthly_quota: limits.monthlyQuota }),
    ...(limits.webhookUrl !== undefined && { webhook_url: limits.webhookUrl }),
  };
  if (Object.keys(set).length === 0) return true;
  return changeKeys(db, async (trx) => {
    const result = await trx
      .updateTable('omniscrape.api_keys')
      .set(set)
      .where('name', '=', name)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  });
}

/**
 * Makes `name` answer to exactly `key` (provisioning from settings); idempotent. A revoked key
 * stays revoked: a restart with an old OMNISCRAPE_API_KEYS must not bring it back. Returns
 * false for such a key so the caller can warn.
 */
export async function upsertApiKey(db: Db, name: string, key: string): Promise<boolean> {
  const insert = () =>
    db
      .insertInto('omniscrape.api_keys')
      .values({ name, key_hash: hashApiKey(key), key_prefix: prefixOf(key) })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ key_hash: hashApiKey(key), key_prefix: prefixOf(key) })
          .where('omniscrape.api_keys.revoked_at', 'is', null),
      )
      .returning('id')
      .executeTakeFirst();
  try {
    return (await insert()) !== undefined;
  } catch (err) {
    // Two processes provisioning the same key at once (api and worker starting together): the
    // later insert can meet the earlier one's row on the key's digest, which ON CONFLICT (name)
    // does not arbitrate. That row is this very key under this name: provisioned, so once more.
    if ((err as { constraint?: string }).constraint !== 'api_keys_key_hash_key') throw err;
    return (await insert()) !== undefined;
  }
}

export async function revokeApiKey(db: Db, name: string): Promise<boolean> {
  return changeKeys(db, async (trx) => {
    const result = await trx
      .updateTable('omniscrape.api_keys')
      .set({ revoked_at: new Date() })
      .where('name', '=', name)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  });
}

/** Which of these key ids name keys that are not revoked. */
export async function unrevokedKeyIds(db: Db, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .selectFrom('omniscrape.api_keys')
    .select('id')
    .where('id', 'in', ids)
    .where('revoked_at', 'is', null)
    .execute();
  return new Set(rows.map((r) => r.id));
}

export async function listApiKeys(db: Db) {
  return db
    .selectFrom('omniscrape.api_keys')
    .select([
      'name',
      'key_prefix',
      'created_at',
      'revoked_at',
      'concurrency_limit',
      'max_queued',
      'monthly_quota',
      'webhook_url',
      'is_admin',
    ])
    .orderBy('created_at')
    .execute();
}
