import ipaddr from 'ipaddr.js';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { ApiKeyCache } from '../jobs/api-key-cache';
import { hashApiKey } from '../db/api-keys';
import { MAX_KEY_LENGTH } from './auth';
import { tooManyFailedSignIns } from './errors';

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
    /** The API's key cache: from a throttled address, only keys it has seen valid are looked up. */
    private readonly seen: Pick<ApiKeyCache, 'wasValid'>,
  ) {
    this.#failures = new RateLimiterMemory({ points: limit, duration: windowSeconds });
  }

  /**
   * Looks the key a client presents up through `lookup`, unless the client's address is past its
   * failures and the key is not one this process has seen valid (then 429 TOO_MANY_FAILED_SIGN_INS,
   * with no lookup). A key that is not found counts as a failure of the address.
   */
  async signIn<T>(
    req: { socket: { remoteAddress?: string | undefined } },
    key: string,
    lookup: (keyHash: string) => Promise<T | undefined>,
  ): Promise<T | undefined> {
    const hash = key.length > 0 && key.length <= MAX_KEY_LENGTH ? hashApiKey(key) : undefined;
    // A key seen valid is looked up from any address, so the address's failures need no reading:
    // the usual request, whose key the cache holds, costs no throttle check.
    if (!(hash !== undefined && this.seen.wasValid(hash))) {
      const wait = await this.retryAfterSeconds(clientAddress(req));
      if (wait > 0) throw tooManyFailedSignIns(wait);
    }
    const found = hash === undefined ? undefined : await lookup(hash);
    if (found === undefined) await this.failed(clientAddress(req));
    return found;
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

/**
 * Whom failed sign-ins are counted against: the socket's remote address (trust proxy is off: no
 * header can claim another), an IPv4-mapped IPv6 one as its IPv4, and any other IPv6 one by its
 * /64, since one host is commonly given a whole /64 and could otherwise start afresh at each of its
 * addresses.
 */
export function clientAddress(req: { socket: { remoteAddress?: string | undefined } }): string {
  const raw = req.socket.remoteAddress ?? 'unknown';
  if (!ipaddr.isValid(raw)) return raw;
  const address = ipaddr.process(raw);
  if (address.kind() === 'ipv4') return address.toString();
  const prefix = (address as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${prefix.join(':')}::/64`;
}
