import { LRUCache } from 'lru-cache';
import type { ApiKeyIdentity } from '../db/api-keys';
import type { Db } from '../db/schema';
import { findActiveKeyByHash } from '../db/statements/find-active-key-by-hash';

/** How long a looked-up key is trusted without asking Postgres again. */
export const KEY_CACHE_TTL_MS = 5_000;
/** Keys remembered at most; past it the least recently used goes. */
const KEY_CACHE_MAX_ENTRIES = 10_000;

/**
 * Valid keys seen lately, so a request costs no key lookup in Postgres. Only valid keys are
 * remembered (a new key works at once; guessing fills nothing). Revoking a key or changing its
 * limits NOTIFYs every API process, which forgets all keys then (see KEYS_CHANGED_CHANNEL); the TTL
 * bounds how long a change can go unseen should that notice be lost with a dropped connection.
 * Requests that miss on the same key at once share one lookup.
 */
export class ApiKeyCache {
  /** Key hash → its identity; false (dropped at once) for a key that is not valid. */
  readonly #entries: LRUCache<string, ApiKeyIdentity | false>;
  #lookups = 0;

  constructor(db: Db, ttlMs = KEY_CACHE_TTL_MS, maxEntries = KEY_CACHE_MAX_ENTRIES) {
    this.#entries = new LRUCache<string, ApiKeyIdentity | false>({
      max: maxEntries,
      ttl: ttlMs,
      fetchMethod: async (keyHash) => {
        this.#lookups++;
        return (await findActiveKeyByHash(db, keyHash)) ?? false;
      },
      // A lookup in flight when clear() runs still answers its request, and caches nothing:
      // it may have read the key before the change the clear is for.
      ignoreFetchAbort: true,
      // A lookup that failed (Postgres away) leaves the key's last identity for wasValid.
      noDeleteOnFetchRejection: true,
    });
  }

  async find(keyHash: string): Promise<ApiKeyIdentity | undefined> {
    const identity = await this.#entries.fetch(keyHash);
    if (identity) return identity;
    this.#entries.delete(keyHash);
    return undefined;
  }

  /**
   * Whether the key was valid when last looked up here, however long ago (until a change to keys
   * clears the cache, or the key is the least recently used of too many): a throttled address may
   * still use such a key, never a guess.
   */
  wasValid(keyHash: string): boolean {
    return !!this.#entries.peek(keyHash, { allowStale: true });
  }

  /** Lookups sent to Postgres so far (cache misses). */
  get lookups(): number {
    return this.#lookups;
  }

  clear(): void {
    this.#entries.clear();
  }
}
