import type { Logger } from '../logger';
import type { ServiceMetrics } from '../metrics/service-metrics';
import type { Db } from '../db/schema';
import { failAbandonedSyncScrapes as failAbandonedSyncScrapeRows } from '../db/scrape-jobs';
import type { Duty } from './scheduled-duty';

/** This duty's pg-boss queue (ensureMaintenanceQueues creates it); its schedule is named after it. */
export const ABANDONED_SYNC_SCRAPES_QUEUE = 'fail-abandoned-sync-scrapes';

/** Slack beyond a sync scrape's own timeout before its row is judged abandoned. */
export const ABANDONED_AFTER_SLACK_SECONDS = 60;

/**
 * A sync scrape's row is `processing` while its API process scrapes. If that process died (or lost
 * Postgres) before recording the outcome, the row's lease lapses (which already frees its key's
 * concurrency slot, see SyncScrapeLeases); once the row is also well past its own timeout — so no
 * process can still be scraping it — it is ended `failed` with code SCRAPE_ABANDONED, for the
 * history's sake.
 */
export async function failAbandonedSyncScrapes(db: Db, leaseSeconds: number): Promise<number> {
  return failAbandonedSyncScrapeRows(db, leaseSeconds, ABANDONED_AFTER_SLACK_SECONDS);
}

/** The scheduled end of abandoned sync scrapes' rows. */
export function abandonedSyncScrapes(
  deps: { db: Db; logger: Logger; metrics: ServiceMetrics },
  options: { cron: string; syncLeaseSeconds: number },
): Duty {
  return {
    name: 'abandoned sync scrapes',
    queue: ABANDONED_SYNC_SCRAPES_QUEUE,
    cron: options.cron,
    // One statement: nothing to stop between steps.
    async run() {
      const abandoned = await failAbandonedSyncScrapes(deps.db, options.syncLeaseSeconds);
      deps.metrics.jobsEnded({ kind: 'sync', status: 'failed', errorCode: 'SCRAPE_ABANDONED' }, abandoned);
      if (abandoned > 0) deps.logger.warn({ abandoned }, 'ended abandoned sync scrapes');
    },
  };
}
