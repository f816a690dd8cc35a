import { RateLimiterMemory } from 'rate-limiter-flexible';

/**
 * Failed sign-ins (an unknown X-API-Key, a wrong key in the dashboard's form) per client address.
 * Past `limit` failures in a window, the address is refused for the rest of the window before any
 * lookup, so guessing costs no database reads. Successes count nothing. The limiter's records
 * expire with their window (unref'd timers), so idle addresses hold no memory.
 */
export class SignInThrottle {
  readonly #failures: RateLimiterMemory;

  constructor(
    readonly limit: number,
    readonly windowSeconds: number,
  ) {
    this.#failures = new RateLimiterMemory({ points: limit, duration: windowSeconds });
  }

  /** Seconds until `address` may try again; 0 when it may now. */
  async retryAfterSeconds(address: string): Promise<number> {
    const record = await this.#failures.get(address);
    if (record === null || record.consumedPoints < this.limit) return 0;
    return Math.max(1, Math.ceil(record.msBeforeNext / 1000));
  }

  async failed(address: string): Promise<void> {
    await this.#failures.penalty(address, 1);
  }
}

/** The client's address as the socket sees it (trust proxy is off: no header can claim another). */
export const clientAddress = (req: { socket: { remoteAddress?: string | undefined } }): string =>
  req.socket.remoteAddress ?? 'unknown';
