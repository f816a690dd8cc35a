import { LRUCache } from 'lru-cache';
import type { GroupConcurrencyConfig } from 'pg-boss';
import type { ServiceContext } from '../context';
import { customConcurrencyLimits } from '../db/key-limits-queries';

/** How often the tiers are read again; new keys and limits apply to jobs fetched after that. */
const GROUP_TIERS_REFRESH_MS = 5_000;

type Tiers = Record<string, number>;

/**
 * pg-boss group concurrency for the fetch: one group per key, limited to the key's concurrency.
 * Keys with a limit of their own carry it as their tier name, so the tiers are simply every
 * distinct custom limit, kept for GROUP_TIERS_REFRESH_MS.
 */
export function keyGroupLimits(ctx: Pick<ServiceContext, 'store' | 'config' | 'logger'>) {
  const tiers = new LRUCache<'tiers', Tiers>({
    max: 1,
    ttl: GROUP_TIERS_REFRESH_MS,
    fetchMethod: async (_key, last) => {
      try {
        const limits = await customConcurrencyLimits(ctx.store.db);
        return Object.fromEntries(limits.map((limit) => [String(limit), limit]));
      } catch (err) {
        // Not rethrown: the last tiers still hold, and the fetch itself will meet the outage. Kept
        // as read now, so they are tried again in GROUP_TIERS_REFRESH_MS, not on every claim.
        ctx.logger.warn({ err }, 'could not read the key concurrency tiers; keeping the last ones');
        return last ?? {};
      }
    },
  });
  return {
    async current(): Promise<{ groupConcurrency: GroupConcurrencyConfig }> {
      return {
        groupConcurrency: { default: ctx.config.defaultConcurrency, tiers: await tiers.forceFetch('tiers') },
      };
    },
  };
}
