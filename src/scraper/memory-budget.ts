/**
 * A byte budget for page bodies held by one process. A scrape reserves its body's size before
 * reading it and holds the reservation until its outcome is stored; while the budget is spent,
 * further bodies wait unread (their sockets are not read, so TCP keeps the bytes at the target's
 * side). The fetches themselves stay in flight: only how many bodies sit in memory at once is
 * bounded, and so the process's memory, whatever the number of jobs in progress.
 *
 * Waiting happens only before a scrape holds anything, and a holder never waits again (a body
 * longer than announced grows its reservation past the budget instead), so holders always finish
 * and the budget cannot deadlock. A body larger than the whole budget is let in alone. A waiter
 * may set how long it waits at most: then it is let in past the budget, up to twice the budget,
 * rather than made to fail (the scraper waits at most half the time a scrape has left, so a slow
 * large page elsewhere delays a scrape without timing it out, unless bodies twice the budget are
 * already held).
 */
interface Waiter {
  bytes: number;
  grant: () => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  timer?: NodeJS.Timeout;
}

export class MemoryBudget {
  #used = 0;
  readonly #waiting: Waiter[] = [];

  constructor(readonly limitBytes: number) {}

  get usedBytes(): number {
    return this.#used;
  }

  /** A handle for one scrape's reservation (reserve once, grow, release all at the end). */
  hold(): BudgetHold {
    return new BudgetHold(this);
  }

  /** @internal */
  acquire(bytes: number, signal?: AbortSignal, waitAtMostMs = Infinity): Promise<void> {
    if (this.#waiting.length === 0 && this.#fits(bytes)) {
      this.#used += bytes;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      signal?.throwIfAborted();
      const waiter: Waiter = { bytes, grant: resolve, signal };
      if (signal) {
        waiter.onAbort = () => {
          this.#leave(waiter);
          reject(signal.reason);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      if (Number.isFinite(waitAtMostMs)) {
        waiter.timer = setTimeout(() => {
          // Past the budget (waiting longer would cost the scrape its deadline), but never past
          // twice the budget: beyond that the body keeps waiting its turn.
          if (this.#used + bytes > 2 * this.limitBytes && this.#used > 0) return;
          this.#used += bytes;
          this.#leave(waiter);
          resolve();
        }, waitAtMostMs);
      }
      this.#waiting.push(waiter);
    });
  }

  /** A waiter leaves the queue without its turn. */
  #leave(waiter: Waiter): void {
    const i = this.#waiting.indexOf(waiter);
    if (i >= 0) this.#waiting.splice(i, 1);
    clearTimeout(waiter.timer);
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    this.#grantWaiting(); // the head may have been the one blocking smaller requests
  }

  /** @internal Never waits: a holder's body turned out longer than it reserved. */
  grow(bytes: number): void {
    this.#used += bytes;
  }

  /** @internal */
  release(bytes: number): void {
    this.#used -= bytes;
    this.#grantWaiting();
  }

  #fits(bytes: number): boolean {
    return this.#used === 0 || this.#used + bytes <= this.limitBytes;
  }

  /** First come, first served: a large body at the head is not overtaken by smaller ones forever. */
  #grantWaiting(): void {
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0]!.bytes)) {
      const next = this.#waiting.shift()!;
      if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
      clearTimeout(next.timer);
      this.#used += next.bytes;
      next.grant();
    }
  }
}

export class BudgetHold {
  #held = 0;

  constructor(private readonly budget: MemoryBudget) {}

  /**
   * Waits until `bytes` fit the budget (or `signal` aborts), or `waitAtMostMs` at most (then takes
   * them past the budget). Call once, before holding anything.
   */
  async reserve(bytes: number, signal?: AbortSignal, waitAtMostMs?: number): Promise<void> {
    if (this.#held > 0) return this.growTo(this.#held + bytes);
    await this.budget.acquire(bytes, signal, waitAtMostMs);
    this.#held = bytes;
  }

  /** Raises the reservation to `bytes` without waiting (a body longer than it announced). */
  growTo(bytes: number): void {
    if (bytes <= this.#held) return;
    this.budget.grow(bytes - this.#held);
    this.#held = bytes;
  }

  /** Gives everything back; safe to call more than once. */
  release(): void {
    if (this.#held === 0) return;
    const bytes = this.#held;
    this.#held = 0;
    this.budget.release(bytes);
  }
}
