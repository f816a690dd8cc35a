import type { Logger } from '../logger';
import { coalesced } from './coalesced';
import type { Db } from '../db/schema';
import {
  announceStatusChanges,
  STATUS_CHANGE_KINDS,
  type StatusChangeKind,
} from '../db/statements/announce-status-changes';

/**
 * Announces status changes to the API processes' waiting requests and streams (JobWatchers), after
 * the changes committed: one announcement at a time, and while one is in flight, the jobs changed
 * meanwhile share the next one. A settle batch of hundreds of jobs costs one round trip, and a
 * burst of batches a handful. Every function that changes a job's status (db/job-status.ts)
 * has its caller announce the job here once its transaction committed, saying whether it ended.
 */
export class StatusNotices {
  #pending = StatusNotices.#none();
  readonly #send = coalesced(() => this.#sendPending());

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
  ) {}

  static #none(): Record<StatusChangeKind, Set<string>> {
    return { ended: new Set(), changed: new Set() };
  }

  /** Announces that these jobs ended (a terminal status) or changed otherwise; call only after the changes committed. */
  announce(kind: StatusChangeKind, jobIds: Iterable<string>): void {
    for (const id of jobIds) this.#pending[kind].add(id);
    if (STATUS_CHANGE_KINDS.every((k) => this.#pending[k].size === 0)) return;
    this.#send();
  }

  async #sendPending(): Promise<void> {
    const ended = [...this.#pending.ended];
    const changed = [...this.#pending.changed];
    if (ended.length + changed.length === 0) return;
    this.#pending = StatusNotices.#none();
    await announceStatusChanges(this.db, { ended, changed })
      // Not rethrown: the changes are committed; a waiter that missed it answers when its wait ends,
      // and the listeners re-read every watched job when their connection comes back.
      .catch((err: unknown) =>
        this.logger.debug({ err, jobs: ended.length + changed.length }, 'could not announce status changes'),
      );
  }
}
