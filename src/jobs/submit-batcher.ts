import { fromKysely, type PgBoss } from 'pg-boss';
import { isRetryableWithFewerRows } from '../db/transactions';
import type { Db } from '../db/schema';
import { insertBatch } from '../db/batches';
import { insertIdempotencyKeys, type NewIdempotencyKey } from '../db/idempotency-keys';
import { insertScrapeJobs, type NewAsyncScrapeJob } from '../db/scrape-jobs';
import { insertJobWebhooks, type JobWebhook } from '../db/webhooks';
import { GroupCommit } from './group-commit';
import { SCRAPE_QUEUE, type ScrapeJobData } from './queue';

export interface QueuedSubmission {
  row: NewAsyncScrapeJob;
  data: ScrapeJobData;
  group: { id: string; tier?: string };
  priority: number;
  /** The client's Idempotency-Key, recorded with the job in the same transaction. */
  idempotencyKey?: NewIdempotencyKey;
  /** Where the job's end is delivered (the request's webhook, else its key's), recorded with it. */
  webhook?: JobWebhook | undefined;
}

/** Most submissions written by one transaction. */
export const MAX_SUBMIT_BATCH = 500;

/**
 * Writes submissions by group commit (see GroupCommit): the history rows in one INSERT and the
 * pg-boss jobs in one `insert`, in one transaction. Each caller still gets its answer only after
 * its own rows are committed, so a 202 keeps its meaning; under load one commit serves many requests.
 */
export class SubmitBatcher {
  readonly #commits: GroupCommit<QueuedSubmission>;

  constructor(
    private readonly db: Db,
    private readonly boss: PgBoss,
    private readonly onCommitted: () => void,
    /** Seals the webhooks' own secrets (OMNISCRAPE_SECRETS_KEY); absent, they are stored as given. */
    private readonly secretsKey?: Buffer,
  ) {
    this.#commits = new GroupCommit(
      async (batch) => {
        await db.transaction().execute(async (trx) => {
          await insertScrapeJobs(
            trx,
            batch.map((s) => s.row),
          );
          await insertIdempotencyKeys(
            trx,
            batch.flatMap((s) => (s.idempotencyKey ? [s.idempotencyKey] : [])),
          );
          await insertJobWebhooks(trx, webhooksOf(batch), secretsKey);
          await boss.insert(SCRAPE_QUEUE, batch.map(bossJobOf), { db: fromKysely(trx) });
        });
        onCommitted();
        return [];
      },
      MAX_SUBMIT_BATCH,
      isRetryableWithFewerRows,
    );
  }

  submit(submission: QueuedSubmission): Promise<void> {
    return this.#commits.add(submission);
  }

  /**
   * Writes a batch of one key's submissions in a transaction of its own (a batch is already many
   * jobs; it does not wait for others to join it): the batch, its history rows and its pg-boss jobs
   * in a fixed number of statements, whatever its size.
   */
  async submitBatch(
    batch: { id: string; apiKeyId: string; requestId: string | null },
    submissions: readonly QueuedSubmission[],
    idempotencyKey?: NewIdempotencyKey,
  ): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await insertBatch(trx, { ...batch, jobs: submissions.map((s) => s.row) });
      if (idempotencyKey) await insertIdempotencyKeys(trx, [idempotencyKey]);
      await insertJobWebhooks(trx, webhooksOf(submissions), this.secretsKey);
      await this.boss.insert(SCRAPE_QUEUE, submissions.map(bossJobOf), { db: fromKysely(trx) });
    });
    this.onCommitted();
  }
}

const webhooksOf = (submissions: readonly QueuedSubmission[]) =>
  submissions.flatMap((s) => (s.webhook ? [{ jobId: s.data.jobId, webhook: s.webhook }] : []));

const bossJobOf = (s: QueuedSubmission) => ({
  id: s.data.jobId,
  data: s.data,
  group: s.group,
  priority: s.priority,
});
