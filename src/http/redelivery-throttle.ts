import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { HttpError } from './errors';

/**
 * Redeliveries a key may ask for per minute (OMNISCRAPE_WEBHOOK_REDELIVERIES_PER_MINUTE), counted
 * in this API process: over it, 429 TOO_MANY_REDELIVERIES with Retry-After, before any database
 * read. Memory holds one counter per key that asked in the last minute.
 */
export function redeliveryThrottle(perMinute: number): (apiKeyId: string) => Promise<void> {
  const limiter = new RateLimiterMemory({ points: perMinute, duration: 60 });
  return async (apiKeyId) => {
    try {
      await limiter.consume(apiKeyId);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      throw new HttpError(
        429,
        'TOO_MANY_REDELIVERIES',
        `This API key asked for ${perMinute} webhook redeliveries in the last minute (its limit); retry after Retry-After.`,
        { 'Retry-After': String(Math.max(1, Math.ceil(err.msBeforeNext / 1000))) },
      );
    }
  };
}
