import type { PgBoss } from 'pg-boss';
import type { Config } from './config';
import type { ApiKeyCache } from './jobs/api-key-cache';
import type { BatchProgressReaders } from './jobs/batch-progress';
import type { HeldRequests } from './jobs/held-requests';
import type { JobWatchers } from './jobs/job-watchers';
import type { KeyRounds, QueueCapCheck } from './jobs/key-limits';
import type { StatusNotices } from './jobs/status-notices';
import type { SubmitBatcher } from './jobs/submit-batcher';
import type { SyncScrapeLeases } from './jobs/sync-leases';
import type { Logger } from './logger';
import type { ServiceMetrics } from './metrics/service-metrics';
import type { PageScraper } from './scraper/page-scraper';
import type { ReportingDb } from './db/reporting/reporting-schema';
import type { Store } from './db/pool';

/**
 * What the roles need from each other, passed in. Two things belong to the process rather than to
 * one service (tests run several services in one process), so their modules hold them: prom-client's
 * process metrics, registered once (metrics/service-metrics.ts), and the names of the hot statements,
 * registered as their modules load (namedStatement).
 */
export interface ServiceContext {
  config: Config;
  logger: Logger;
  store: Store;
  /**
   * Reads of the reporting views (`omniscrape_reporting`: the dashboard's figures), on their own
   * small pool to OMNISCRAPE_REPORTING_DATABASE_URL (a read replica), else to the main database.
   * Never use it for job reads of the API: a replica lags, and those must see every commit.
   */
  reporting: ReportingDb;
  boss: PgBoss;
  /** Fetches pages: the HTTP engine, and headless Chromium when a page is to be rendered. */
  scraper: PageScraper;
  queueCaps: QueueCapCheck;
  /** The queue position (pg-boss priority) of each new job. */
  rounds: KeyRounds;
  submissions: SubmitBatcher;
  inFlight: InFlightWork;
  /** The slot leases of the sync scrapes this process runs (API role). */
  syncLeases: SyncScrapeLeases;
  /** Valid API keys seen lately (API role). */
  apiKeys: ApiKeyCache;
  /** Announces committed status changes to every API process's watchers. */
  statusNotices: StatusNotices;
  /** The jobs this process's waiting requests and event streams watch (API role). */
  jobWatchers: JobWatchers;
  /** The event streams and `?wait=` polls this process holds open, counted per key (API role). */
  heldRequests: HeldRequests;
  /** One reader of counts per batch its event streams follow (API role). */
  batchProgress: BatchProgressReaders;
  /** What this process counts for GET /metrics (src/metrics/). */
  metrics: ServiceMetrics;
}

/** Work started by requests that must finish before the process closes its pools. */
export class InFlightWork {
  readonly #pending = new Set<Promise<unknown>>();

  track<T>(work: Promise<T>): Promise<T> {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.#pending.add(settled);
    void settled.then(() => this.#pending.delete(settled));
    return work;
  }

  async drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }
}
