import type { Logger } from '../logger';
import { coalesced } from './coalesced';
import type { Db } from '../db/schema';
import { touchScrapeJobs } from '../db/statements/touch-scrape-jobs';

/**
 * The leases of the sync scrapes this API process is running. A sync scrape's history row holds
 * one of its key's concurrency slots only while its lease is fresh (`omniscrape.key_slots`), so
 * however its scrape ends — an exception, a failed UPDATE, the process killed — the slot frees
 * within the lease at most, not when maintenance gets to the row.
 *
 * Inserting the row is the first lease; every third of the lease this renews, in one statement,
 * the scrapes whose lease is at least half a period old — those renewed at the last tick, and
 * those started since more than half a period ago (most sync scrapes finish before their first
 * renewal and cost nothing here). So a lease is renewed at most 1.5 periods (half the lease) after
 * the last, leaving half the lease for a slow renewal or a busy event loop. One renewal runs at a
 * time: a tick that finds the previous one still running says so and leaves a follow-up to run as
 * soon as it ends, rather than piling statements up.
 */
export class SyncScrapeLeases {
  /** Running scrape's job id → when its lease was last renewed (performance.now()). */
  readonly #renewedAt = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  /** One renewal at a time; a tick that comes while one runs leaves a follow-up to run as soon as it ends. */
  readonly #renewDue = coalesced(() => this.#renew(), {
    onOverlap: (first) => {
      if (first)
        this.logger.warn(
          { leaseSeconds: this.leaseSeconds },
          'sync scrape leases: the previous renewal is still running; renewing again when it ends',
        );
    },
  });

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    readonly leaseSeconds: number,
  ) {}

  get #periodMs(): number {
    return (this.leaseSeconds * 1000) / 3;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.#renewDue(), this.#periodMs);
  }

  /** A scrape whose row was just inserted (which leased it) now runs. */
  hold(jobId: string): void {
    this.#renewedAt.set(jobId, performance.now());
  }

  /** The scrape ended (recorded or not): its lease is no longer renewed. */
  release(jobId: string): void {
    this.#renewedAt.delete(jobId);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#renewDue.stop();
  }

  async #renew(): Promise<void> {
    const startedAt = performance.now();
    // Half a period, not a whole one: timers fire a little early or late, and a lease renewed at
    // the last tick must count as due at this one.
    const due = [...this.#renewedAt]
      .filter(([, at]) => startedAt - at >= this.#periodMs / 2)
      .map(([id]) => id);
    if (due.length === 0) return;
    try {
      await touchScrapeJobs(this.db, due);
      for (const id of due) if (this.#renewedAt.has(id)) this.#renewedAt.set(id, startedAt);
    } catch (err) {
      // Not rethrown: a timer has no caller. The next tick tries again; if Postgres stays away,
      // the leases lapse and the slots free, which is what the lease is for.
      this.logger.warn({ err, due: due.length }, 'could not renew sync scrape leases');
    }
  }
}
