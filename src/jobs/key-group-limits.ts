import type { GroupConcurrencyConfig } from 'pg-boss';
import type { ServiceContext } from '../context';
import { customConcurrencyLimits } from '../db/key-limits-queries';

/** How often the tiers are read again; new keys and limits apply to jobs fetched after that. */
const GROUP_TIERS_REFRESH_MS = 5_000;

/**
 * pg-boss group concurrency for the fetch: one group per key, limited to the key's concurrency.
 * Keys with a limit of their own carry it as their tier name, so the tiers are simply every
 * distinct custom limit, kept for GROUP_TIERS_REFRESH_MS.
 */
export function keyGroupLimits(ctx: Pick<ServiceContext, 'store' | 'config' | 'logger'>) {
  let tiers: Record<string, number> = {};
  let readAt = 0;
  return {
    async current(): Promise<{ groupConcurrency: GroupConcurrencyConfig }> {
      if (Date.now() - readAt > GROUP_TIERS_REFRESH_MS) {
        try {
          const limits = await customConcurrencyLimits(ctx.store.db);
          tiers = Object.fromEntries(limits.map((limit) => [String(limit), limit]));
          readAt = Date.now();
        } catch (err) {
          // Not rethrown: the last tiers still hold, and the fetch itself will meet the outage.
          ctx.logger.warn({ err }, 'could not read the key concurrency tiers; keeping the last ones');
          readAt = Date.now(); // tried again in GROUP_TIERS_REFRESH_MS, not on every claim
        }
      }
      return { groupConcurrency: { default: ctx.config.defaultConcurrency, tiers } };
    },
  };
}
