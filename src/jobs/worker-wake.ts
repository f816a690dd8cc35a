import type { Logger } from '../logger';
import { coalesced } from './coalesced';
import type { Db } from '../db/schema';
import { announceQueuedJobs } from '../db/statements/announce-queued-jobs';

/**
 * Wakes idle workers after submissions: one NOTIFY at a time, and while one is in flight, later
 * submissions share the next one. A burst of thousands of submissions costs a handful of notices,
 * and each is sent after the submissions it covers have committed. The notice carries the sending
 * process's id, so a worker in that same process (woken directly) can ignore its own notices.
 */
export class WorkerWake {
  readonly #notify = coalesced(() =>
    announceQueuedJobs(this.db, this.processId)
      // Not rethrown: the submissions are committed; idle workers find them at their next idle poll.
      // At debug: during an outage every submission's failure is already logged.
      .catch((err: unknown) => this.logger.debug({ err }, 'could not wake workers; they poll anyway')),
  );

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly processId: string,
  ) {}

  announce(): void {
    this.#notify();
  }
}
