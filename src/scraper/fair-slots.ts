/** Gives back a slot taken from FairSlots. Calling it twice gives back one slot. */
export type ReleaseSlot = () => void;

interface Waiter {
  grant: (release: ReleaseSlot) => void;
  fail: (reason: Error) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * A fixed number of slots shared between owners (API keys), handed out in turns: when slots are
 * short, each owner with a waiter gets the next free slot in rotation, so one owner's hundred
 * waiters delay another owner's one by at most one turn. Waiters of one owner are served in order.
 * A waiter whose signal aborts leaves the queue (its acquire rejects with the signal's reason).
 */
export class FairSlots {
  #free: number;

  /** Owners with waiters, in the order their turn comes; each owner's waiters in arrival order. */
  readonly #queues = new Map<string, Waiter[]>();

  constructor(readonly size: number) {
    this.#free = size;
  }

  /** Slots in use now. */
  get inUse(): number {
    return this.size - this.#free;
  }

  /** Waiters now, all owners together. */
  get waiting(): number {
    let count = 0;
    for (const queue of this.#queues.values()) count += queue.length;
    return count;
  }

  acquire(owner: string, signal?: AbortSignal): Promise<ReleaseSlot> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.#free > 0 && this.#queues.size === 0) {
      this.#free--;
      return Promise.resolve(this.#releaser());
    }
    return new Promise<ReleaseSlot>((grant, fail) => {
      const waiter: Waiter = {
        grant,
        fail,
        signal,
        onAbort: () => {
          this.#remove(owner, waiter);
          fail(abortReason(signal!));
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      const queue = this.#queues.get(owner);
      if (queue) queue.push(waiter);
      else this.#queues.set(owner, [waiter]);
    });
  }

  #releaser(): ReleaseSlot {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#free++;
      this.#handOut();
    };
  }

  #handOut(): void {
    while (this.#free > 0) {
      const next = this.#queues.entries().next();
      if (next.done) return;
      const [owner, queue] = next.value;
      const waiter = queue.shift()!;
      // The owner's turn is used: it goes to the back of the rotation (or leaves it, with no waiter left).
      this.#queues.delete(owner);
      if (queue.length > 0) this.#queues.set(owner, queue);
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      this.#free--;
      waiter.grant(this.#releaser());
    }
  }

  #remove(owner: string, waiter: Waiter): void {
    const queue = this.#queues.get(owner);
    if (!queue) return;
    const at = queue.indexOf(waiter);
    if (at >= 0) queue.splice(at, 1);
    if (queue.length === 0) this.#queues.delete(owner);
  }
}

/** Why a wait was given up: the signal's reason when it is an Error (AbortSignal.timeout's is). */
function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the wait for a slot was aborted');
}
