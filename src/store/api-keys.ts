import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './database';

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
}

export async function findActiveKeyByHash(db: Db, keyHash: string): Promise<ApiKeyIdentity | undefined> {
  return db
    .selectFrom('omniscrape.api_keys')
    .select(['id', 'name'])
    .where('key_hash', '=', keyHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
}

/** Creates a key under a new name; returns undefined when the name is taken. */
export async function insertApiKey(db: Db, name: string, key: string): Promise<ApiKeyIdentity | undefined> {
  return db
    .insertInto('omniscrape.api_keys')
    .values({ name, key_hash: hashApiKey(key), key_prefix: prefixOf(key) })
    .onConflict((oc) => oc.column('name').doNothing())
    .returning(['id', 'name'])
    .executeTakeFirst();
}

/**
 * Makes `name` answer to exactly `key` (provisioning from settings); idempotent. A revoked key
 * stays revoked: a restart with an old OMNISCRAPE_API_KEYS must not bring it back. Returns
 * false for such a key so the caller can warn.
 */
export async function upsertApiKey(db: Db, name: string, key: string): Promise<boolean> {
  const row = await db
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
  return row !== undefined;
}

export async function revokeApiKey(db: Db, name: string): Promise<boolean> {
  const result = await db
    .updateTable('omniscrape.api_keys')
    .set({ revoked_at: new Date() })
    .where('name', '=', name)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function listApiKeys(db: Db) {
  return db
    .selectFrom('omniscrape.api_keys')
    .select(['name', 'key_prefix', 'created_at', 'revoked_at'])
    .orderBy('created_at')
    .execute();
}
