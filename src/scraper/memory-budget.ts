/** A hold's wait for more bytes, queued until they fit (see MemoryBudget for the order). */
interface Request {
  hold: BudgetHold;
  bytes: number;
  /** When the asking hold was first let in; only for growths (they go ahead of new bodies). */
  holderSince?: number;
  grant: () => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  timer?: NodeJS.Timeout;
}

/**
 * A byte budget for page bodies held by one process. A scrape reserves bytes before it reads them
 * and holds them until its outcome is stored: first what the body announces (or a small first
 * share), then more as its decoded bytes grow. Whenever a reservation or a growth does not fit, the
 * scrape waits, its body unread (its socket is not read, so TCP keeps the rest at the target's
 * side). The fetches stay in flight: only the bytes held at once are bounded, whatever the number
 * of jobs in progress or how their pages are sent (chunked, compressed, with or without a length).
 *
 * Who goes first: growths of bodies already held (oldest holder first), then new bodies in the
 * order they asked; nobody overtakes the head of the line, so a large request is not starved by
 * smaller ones. A body larger than the whole budget is let in when nothing else is held.
 *
 * Deadlines: a waiter may set how long it waits at most; then it is let in past the budget, as
 * long as everything held stays within twice the budget, rather than made to fail (the scraper's
 * waits for one scrape, all together, end half its timeout after it began, so a slow large page
 * elsewhere delays a scrape without timing it out).
 *
 * No deadlock: holders waiting to grow could each wait for another's release forever. So when
 * every holder is waiting (none is reading or storing, so none would release without more
 * budget), the oldest holder is let grow past the budget, and keeps growing while that holds, until
 * it has read its whole page and releases it. Holders other than that one are only ever let in
 * within twice the budget, so the bytes held never pass twice the budget plus one body (the oldest
 * scrape's, at most the body cap and what the scraper counts with it).
 */
export class MemoryBudget {
  #used = 0;
  /** Growths first (oldest holder first), then new bodies in arrival order. */
  readonly #waiting: Request[] = [];
  #growthsWaiting = 0;
  /** Holds with bytes, each with when it was let in (increasing, in insertion order). */
  readonly #holders = new Map<BudgetHold, number>();
  #admissions = 0;

  constructor(readonly limitBytes: number) {}

  get usedBytes(): number {
    return this.#used;
  }

  /** A handle for one scrape's reservation (reserve, grow, release all at the end). */
  hold(): BudgetHold {
    return new BudgetHold(this);
  }

  /**
   * @internal Waits until `hold` may hold `bytes` more (see the class for the rules); `granted`
   * runs when they are its own.
   */
  request(
    hold: BudgetHold,
    bytes: number,
    granted: () => void,
    signal?: AbortSignal,
    waitAtMostMs = Infinity,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      signal?.throwIfAborted();
      const request: Request = {
        hold,
        bytes,
        holderSince: this.#holders.get(hold),
        grant: () => {
          granted();
          resolve();
        },
        signal,
      };
      const ahead = request.holderSince !== undefined ? this.#growthsWaiting > 0 : this.#waiting.length > 0;
      if (!ahead && this.#fits(bytes)) {
        this.#take(request);
        return;
      }
      if (signal) {
        request.onAbort = () => {
          this.#remove(request);
          reject(signal.reason as Error);
          this.#grantWaiting(); // it may have been the head blocking smaller requests
        };
        signal.addEventListener('abort', request.onAbort, { once: true });
      }
      if (Number.isFinite(waitAtMostMs)) {
        request.timer = setTimeout(() => {
          // Past the budget (waiting longer would cost the scrape its deadline), but never past
          // twice the budget: beyond that the body keeps waiting its turn.
          if (this.#used + bytes > 2 * this.limitBytes && this.#used > 0) return;
          this.#remove(request);
          this.#take(request);
          this.#grantWaiting(); // the head may have been this request
        }, waitAtMostMs);
      }
      this.#enqueue(request);
      this.#grantWaiting();
    });
  }

  /** @internal */
  release(hold: BudgetHold, bytes: number): void {
    this.#used -= bytes;
    this.#holders.delete(hold);
    this.#grantWaiting();
  }

  #enqueue(request: Request): void {
    const since = request.holderSince;
    if (since === undefined) {
      this.#waiting.push(request);
      return;
    }
    this.#growthsWaiting++;
    const at = this.#waiting.findIndex((r) => r.holderSince === undefined || r.holderSince > since);
    this.#waiting.splice(at < 0 ? this.#waiting.length : at, 0, request);
  }

  #remove(request: Request): void {
    const i = this.#waiting.indexOf(request);
    if (i >= 0) {
      this.#waiting.splice(i, 1);
      if (request.holderSince !== undefined) this.#growthsWaiting--;
    }
    clearTimeout(request.timer);
    if (request.onAbort) request.signal?.removeEventListener('abort', request.onAbort);
  }

  #take(request: Request): void {
    this.#used += request.bytes;
    if (request.bytes > 0 && !this.#holders.has(request.hold))
      this.#holders.set(request.hold, this.#admissions++);
    request.grant();
  }

  #fits(bytes: number): boolean {
    return this.#used === 0 || this.#used + bytes <= this.limitBytes;
  }

  #grantWaiting(): void {
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0]!.bytes)) {
      const next = this.#waiting[0]!;
      this.#remove(next);
      this.#take(next);
    }
    // Every holder waits to grow: none would release anything, so the oldest goes on (see the class).
    if (this.#growthsWaiting > 0 && this.#growthsWaiting === this.#holders.size) {
      const oldest = this.#waiting[0]!; // growths come first, the oldest holder's at their head
      this.#remove(oldest);
      this.#take(oldest);
    }
  }
}

export class BudgetHold {
  #held = 0;

  constructor(private readonly budget: MemoryBudget) {}

  get heldBytes(): number {
    return this.#held;
  }

  /**
   * Waits until the hold may hold `bytes` in all (or `signal` aborts); once it has waited
   * `waitAtMostMs`, takes them past the budget if everything held stays within twice the budget.
   * Asking for no more than is held returns at once. One request at a time.
   */
  async reserveTo(bytes: number, signal?: AbortSignal, waitAtMostMs?: number): Promise<void> {
    const more = bytes - this.#held;
    if (more <= 0) return;
    await this.budget.request(this, more, () => (this.#held += more), signal, waitAtMostMs);
  }

  /** Gives everything back; safe to call more than once. */
  release(): void {
    const bytes = this.#held;
    this.#held = 0;
    this.budget.release(this, bytes);
  }
}
