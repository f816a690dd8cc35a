import type { Db } from '../db/schema';
import { findJob, type OwnedJob } from '../db/statements/find-job-for-key';
import { findJobs } from '../db/statements/find-jobs';

/** Reads of jobs by id running at once; polls that come while they all run share the next read. */
export const MAX_JOB_READS_IN_FLIGHT = 2;
/** Most ids one merged read asks for (the rest wait for the read after it). */
export const MAX_IDS_PER_JOB_READ = 100;

interface Waiter {
  resolve(job: OwnedJob | undefined): void;
  reject(err: unknown): void;
}

/**
 * The polls' reads of jobs by id (GET /v1/jobs/{id}), merged when Postgres is busy: up to
 * MAX_JOB_READS_IN_FLIGHT statements run at once, and the polls that arrive meanwhile wait and share
 * one statement for all their ids. Under load a busy API process so sends one statement for a
 * handful of polls instead of one each (each statement costs a round trip, socket writes and a
 * pooled connection in this process, and its execution in Postgres); an idle one reads at once.
 * Every read begins after each poll it answers arrived, so each answer reflects everything
 * committed before its request.
 */
export class JobReads {
  /** Ids for the next read → the polls waiting for them. */
  readonly #queued = new Map<string, Waiter[]>();
  #inFlight = 0;

  constructor(
    private readonly db: Db,
    private readonly maxInFlight = MAX_JOB_READS_IN_FLIGHT,
  ) {}

  /** The job with this id (any owner: the caller checks), read after this call. */
  find(id: string): Promise<OwnedJob | undefined> {
    return new Promise((resolve, reject) => {
      const waiting = this.#queued.get(id);
      if (waiting) waiting.push({ resolve, reject });
      else this.#queued.set(id, [{ resolve, reject }]);
      this.#readNext();
    });
  }

  #readNext(): void {
    if (this.#inFlight >= this.maxInFlight || this.#queued.size === 0) return;
    const batch = new Map<string, Waiter[]>();
    for (const [id, waiters] of this.#queued) {
      batch.set(id, waiters);
      this.#queued.delete(id);
      if (batch.size >= MAX_IDS_PER_JOB_READ) break;
    }
    this.#inFlight++;
    const ids = [...batch.keys()];
    // One id reads through the single-row statement, the plan an idle API process always uses.
    const read =
      ids.length === 1 ? findJob(this.db, ids[0]!).then((job) => (job ? [job] : [])) : findJobs(this.db, ids);
    read
      .then(
        (jobs) => {
          const byId = new Map(jobs.map((job) => [job.id, job]));
          for (const [id, waiters] of batch) for (const w of waiters) w.resolve(byId.get(id));
        },
        (err: unknown) => {
          for (const waiters of batch.values()) for (const w of waiters) w.reject(err);
        },
      )
      .finally(() => {
        this.#inFlight--;
        this.#readNext();
      });
  }
}
