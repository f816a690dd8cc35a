import { hash, randomBytes } from 'node:crypto';
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
  return hash('sha256', key, 'hex');
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

/** What provisioning a key from settings did (upsertApiKey). */
export type ProvisionOutcome =
  /** The name answers to this key: created now, or already so. */
  | 'provisioned'
  /** The name was a plain key answering to another value: it answers to this one now, the old one stops. */
  | 'replaced'
  /** The name's key is revoked, and stays so: a restart with an old OMNISCRAPE_API_KEYS must not bring it back. */
  | 'revoked'
  /** The name is an admin key answering to another value: left as it is (settings never replace an admin key). */
  | 'admin-kept';

/**
 * Makes `name` answer to `key` (provisioning from settings); idempotent. An admin key is never
 * given another value this way, and a revoked key stays revoked; the caller says so (see
 * ProvisionOutcome). A plain key given a new value is replaced, and API processes are told.
 */
export async function upsertApiKey(
  db: Db,
  name: string,
  key: string,
  retried = false,
): Promise<ProvisionOutcome> {
  const keyHash = hashApiKey(key);
  const existing = await db
    .selectFrom('omniscrape.api_keys')
    .select(['key_hash', 'is_admin', 'revoked_at'])
    .where('name', '=', name)
    .executeTakeFirst();
  if (existing?.revoked_at) return 'revoked';
  if (existing?.key_hash === keyHash) return 'provisioned';
  if (existing?.is_admin) return 'admin-kept';
  if (existing) {
    const replaced = await changeKeys(db, async (trx) => {
      const result = await trx
        .updateTable('omniscrape.api_keys')
        .set({ key_hash: keyHash, key_prefix: prefixOf(key) })
        .where('name', '=', name)
        .where('key_hash', '=', existing.key_hash)
        .where('is_admin', '=', false)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
    // Not replaced: the row changed since it was read (another process provisioned it, or it was
    // revoked or made admin); what it is now decides.
    return replaced ? 'replaced' : upsertApiKey(db, name, key, retried);
  }
  try {
    const inserted = await db
      .insertInto('omniscrape.api_keys')
      .values({ name, key_hash: keyHash, key_prefix: prefixOf(key) })
      .onConflict((oc) => oc.column('name').doNothing())
      .returning('id')
      .executeTakeFirst();
    return inserted ? 'provisioned' : upsertApiKey(db, name, key, retried);
  } catch (err) {
    // Two processes provisioning the same key at once (api and worker starting together): the
    // later insert can meet the earlier one's row on the key's digest, which ON CONFLICT (name)
    // does not arbitrate. Read once more: that row is this very key under this name, or the key
    // belongs to another name, whose insert fails again.
    if ((err as { constraint?: string }).constraint !== 'api_keys_key_hash_key' || retried) throw err;
    return upsertApiKey(db, name, key, true);
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
