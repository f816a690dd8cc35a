/** A held request's place among the process's and its key's; `release` gives it back (only the first call counts). */
export interface HeldSlot {
  release(): void;
}

interface Holder {
  /** Ends the request early (its key was revoked, or the process stops). */
  end: () => void;
}

export interface HeldRequestLimits {
  /** Most requests one key may hold open at once. */
  perKey: number;
  /** Most requests the process may hold open at once, all keys together. */
  perProcess: number;
}

/**
 * The requests this API process holds open (event streams of jobs and batches, `?wait=` polls),
 * counted per key: `take` hands out a slot while the key and the process are under their caps, and
 * each slot is given back exactly once, whoever ends the request first (its client leaving, its
 * end, a revoked key, the process stopping). What a held request watches is its own to forget; a
 * slot only counts it and knows how to end it.
 */
export class HeldRequests {
  readonly #byKey = new Map<string, Set<Holder>>();
  #size = 0;

  constructor(private readonly limits: HeldRequestLimits) {}

  /** Requests held right now, all keys together. */
  get size(): number {
    return this.#size;
  }

  /** Requests this key holds right now. */
  heldBy(apiKeyId: string): number {
    return this.#byKey.get(apiKeyId)?.size ?? 0;
  }

  /** The keys holding requests right now. */
  keys(): string[] {
    return [...this.#byKey.keys()];
  }

  /**
   * A slot for a request of this key, or undefined when the key or the process holds as many as it
   * may. `end` is called (at most once, and never after the release) to end the request early.
   */
  take(apiKeyId: string, end: () => void): HeldSlot | undefined {
    if (this.#size >= this.limits.perProcess) return undefined;
    let held = this.#byKey.get(apiKeyId);
    if ((held?.size ?? 0) >= this.limits.perKey) return undefined;
    if (!held) this.#byKey.set(apiKeyId, (held = new Set()));
    const holders = held;
    let released = false;
    const holder: Holder = {
      end: () => {
        if (!released) end();
      },
    };
    holders.add(holder);
    this.#size++;
    return {
      release: () => {
        if (released) return;
        released = true;
        holders.delete(holder);
        this.#size--;
        if (holders.size === 0 && this.#byKey.get(apiKeyId) === holders) this.#byKey.delete(apiKeyId);
      },
    };
  }

  /** Ends every request this key holds (it was revoked); each gives its slot back as it ends. */
  endKey(apiKeyId: string): void {
    for (const holder of [...(this.#byKey.get(apiKeyId) ?? [])]) holder.end();
  }
}

/**
 * After a notice that keys changed: ends the held requests of every holding key that is revoked
 * now (`unrevoked` says which of the holding keys are not). Keys change rarely, so one read of the
 * holding keys per notice.
 */
export async function endRevokedKeysRequests(
  held: HeldRequests,
  unrevoked: (ids: readonly string[]) => Promise<Set<string>>,
): Promise<void> {
  const holding = held.keys();
  if (holding.length === 0) return;
  const active = await unrevoked(holding);
  for (const id of holding) if (!active.has(id)) held.endKey(id);
}
