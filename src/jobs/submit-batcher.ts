import { fromKysely, type PgBoss } from 'pg-boss';
import type { Db } from '../store/database';
import { insertScrapeJobs, type NewScrapeJob } from '../store/scrape-jobs';
import { SCRAPE_QUEUE, type ScrapeJobData } from './queue';

export interface QueuedSubmission {
  row: NewScrapeJob;
  data: ScrapeJobData;
  group: { id: string; tier?: string };
}

interface Waiting extends QueuedSubmission {
  resolve(): void;
  reject(err: unknown): void;
}

/** Most submissions written by one transaction. */
export const MAX_SUBMIT_BATCH = 500;

/**
 * Writes submissions in shared transactions: while one transaction commits, the submissions that
 * arrive wait and then go together in the next one (history rows in one INSERT, pg-boss jobs in
 * one `insert`). Each caller still gets its answer only after its own rows are committed, so a 202
 * keeps its meaning; a lone submission is written at once, with no added delay. Under load, one
 * commit (and one WAL flush) serves many requests instead of one each.
 */
export class SubmitBatcher {
  #waiting: Waiting[] = [];
  #writing = false;

  constructor(
    private readonly db: Db,
    private readonly boss: PgBoss,
    private readonly onCommitted: () => void,
  ) {}

  submit(submission: QueuedSubmission): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ ...submission, resolve, reject });
      if (!this.#writing) void this.#writeAll();
    });
  }

  async #writeAll(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#waiting.length > 0) {
        const batch = this.#waiting.splice(0, MAX_SUBMIT_BATCH);
        try {
          await this.db.transaction().execute(async (trx) => {
            await insertScrapeJobs(trx, batch.map((s) => s.row));
            await this.boss.insert(
              SCRAPE_QUEUE,
              batch.map((s) => ({ id: s.data.jobId, data: s.data, group: s.group })),
              { db: fromKysely(trx) },
            );
          });
          for (const s of batch) s.resolve();
          this.onCommitted();
        } catch (err) {
          for (const s of batch) s.reject(err);
        }
      }
    } finally {
      this.#writing = false;
    }
  }
}
