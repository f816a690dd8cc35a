import type { Logger } from '../logger';
import type { Db } from '../store/schema';
import { announceStatusChanges } from '../store/statements/announce-status-changes';

/**
 * Announces status changes to the API processes' waiting requests and streams (JobWatchers), after
 * the changes committed: one announcement at a time, and while one is in flight, the jobs changed
 * meanwhile share the next one. A settle batch of hundreds of jobs costs one round trip, and a
 * burst of batches a handful. Every function that changes a job's status (store/job-status.ts)
 * has its caller announce the job here once its transaction committed.
 */
export class StatusNotices {
  #pending = new Set<string>();
  #sending = false;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
  ) {}

  /** Announces these jobs' status changes; call only after the changes committed. */
  announce(jobIds: Iterable<string>): void {
    for (const id of jobIds) this.#pending.add(id);
    if (this.#sending || this.#pending.size === 0) return;
    const ids = [...this.#pending];
    this.#pending = new Set();
    this.#sending = true;
    announceStatusChanges(this.db, ids)
      // Not rethrown: the changes are committed; a waiter that missed it answers when its wait ends,
      // and the listeners re-read every watched job when their connection comes back.
      .catch((err: unknown) =>
        this.logger.debug({ err, jobs: ids.length }, 'could not announce status changes'),
      )
      .finally(() => {
        this.#sending = false;
        this.announce([]);
      });
  }
}
