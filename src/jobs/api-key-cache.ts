import type { ApiKeyIdentity } from '../db/api-keys';
import type { Db } from '../db/schema';
import { findActiveKeyByHash } from '../db/statements/find-active-key-by-hash';

/** How long a looked-up key is trusted without asking Postgres again. */
export const KEY_CACHE_TTL_MS = 5_000;
const KEY_CACHE_MAX_ENTRIES = 10_000;

/**
 * Valid keys seen lately, so a request costs no key lookup in Postgres. Only valid keys are
 * remembered (a new key works at once; guessing fills nothing). Revoking a key or changing its
 * limits NOTIFYs every API process, which forgets all keys then (see KEYS_CHANGED_CHANNEL); the TTL
 * bounds how long a change can go unseen should that notice be lost with a dropped connection.
 */
export class ApiKeyCache {
  readonly #entries = new Map<string, { identity: ApiKeyIdentity; at: number }>();
  /** Bumped by clear(): a lookup that began before a clear does not cache what it read. */
  #generation = 0;
  #lookups = 0;

  constructor(
    private readonly db: Db,
    private readonly ttlMs = KEY_CACHE_TTL_MS,
  ) {}

  async find(keyHash: string): Promise<ApiKeyIdentity | undefined> {
    const hit = this.#entries.get(keyHash);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.identity;
    const generation = this.#generation;
    this.#lookups++;
    const identity = await findActiveKeyByHash(this.db, keyHash);
    if (!identity) this.#entries.delete(keyHash);
    else if (generation === this.#generation) {
      if (this.#entries.size >= KEY_CACHE_MAX_ENTRIES) this.#entries.clear();
      this.#entries.set(keyHash, { identity, at: Date.now() });
    }
    return identity;
  }

  /**
   * Whether the key was valid when last looked up here, however long ago (until a change to keys
   * clears the cache): a throttled address may still use such a key, never a guess.
   */
  wasValid(keyHash: string): boolean {
    return this.#entries.has(keyHash);
  }

  /** Lookups sent to Postgres so far (cache misses). */
  get lookups(): number {
    return this.#lookups;
  }

  clear(): void {
    this.#generation++;
    this.#entries.clear();
  }
}
