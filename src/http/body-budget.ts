/**
 * Bytes of request bodies being read, parsed and validated at once, per API key and in this
 * process. A body reserves its bytes before its first byte is read and gives them back once, when
 * its response ends or its client leaves; a reservation over either bound is refused, so one key's
 * flood of large bodies cannot hold the process's memory.
 */
export class BodyBudget {
  readonly #heldByKey = new Map<string, number>();
  #held = 0;

  constructor(
    readonly perKeyBytes: number,
    readonly perProcessBytes: number,
  ) {}

  /** Reserves `bytes` for `keyId`: the release (safe to call more than once), or undefined when over a bound. */
  reserve(keyId: string, bytes: number): (() => void) | undefined {
    const keyHeld = this.#heldByKey.get(keyId) ?? 0;
    if (keyHeld + bytes > this.perKeyBytes || this.#held + bytes > this.perProcessBytes) return undefined;
    this.#heldByKey.set(keyId, keyHeld + bytes);
    this.#held += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#held -= bytes;
      const left = (this.#heldByKey.get(keyId) ?? bytes) - bytes;
      if (left > 0) this.#heldByKey.set(keyId, left);
      else this.#heldByKey.delete(keyId);
    };
  }

  /** Bytes reserved now: by one key, or in all. */
  held(keyId?: string): number {
    return keyId === undefined ? this.#held : (this.#heldByKey.get(keyId) ?? 0);
  }
}
