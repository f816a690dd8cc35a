import { sql } from 'kysely';
import type { Db, JobStatus } from './schema';

/** How long an idempotency key answers with its first job; after that it may be used afresh. */
export const IDEMPOTENCY_KEY_TTL_SECONDS = 24 * 60 * 60;

const PK_CONSTRAINT = 'idempotency_keys_pkey';

const expiredBefore = sql<Date>`now() - make_interval(secs => ${IDEMPOTENCY_KEY_TTL_SECONDS})`;

/** What an idempotency key created: a job, with its status now, or a batch. */
export type IdempotentSubmission =
  | { requestHash: string; jobId: string; status: JobStatus; batchId?: undefined }
  | { requestHash: string; batchId: string; jobId?: undefined };

/**
 * The submission an API key made with this idempotency key within the last 24 hours, if any. An
 * older row is deleted, so the key can create a job again.
 */
export async function findIdempotentSubmission(
  db: Db,
  apiKeyId: string,
  key: string,
): Promise<IdempotentSubmission | undefined> {
  await db
    .deleteFrom('omniscrape.idempotency_keys')
    .where('api_key_id', '=', apiKeyId)
    .where('key', '=', key)
    .where('created_at', '<=', expiredBefore)
    .execute();
  const row = await db
    .selectFrom('omniscrape.idempotency_keys as i')
    .leftJoin('omniscrape.scrape_jobs as j', 'j.id', 'i.job_id')
    .select(['i.request_hash', 'i.job_id', 'i.batch_id', 'j.status'])
    .where('i.api_key_id', '=', apiKeyId)
    .where('i.key', '=', key)
    .executeTakeFirst();
  if (!row) return undefined;
  if (row.batch_id !== null) return { requestHash: row.request_hash, batchId: row.batch_id };
  if (row.job_id === null || row.status === null) return undefined; // its job is gone
  return { requestHash: row.request_hash, jobId: row.job_id, status: row.status };
}

export interface NewIdempotencyKey {
  apiKeyId: string;
  key: string;
  requestHash: string;
  /** The job it creates, or the batch. */
  jobId?: string;
  batchId?: string;
}

/**
 * Records idempotency keys with the jobs they created, in the submissions' own transaction. A key
 * already recorded (by a concurrent submission) fails the statement with a unique violation that
 * isIdempotencyKeyTaken recognises; the submission is then not written.
 */
export async function insertIdempotencyKeys(db: Db, keys: readonly NewIdempotencyKey[]): Promise<void> {
  if (keys.length === 0) return;
  await db
    .insertInto('omniscrape.idempotency_keys')
    .values(
      keys.map((k) => ({
        api_key_id: k.apiKeyId,
        key: k.key,
        request_hash: k.requestHash,
        job_id: k.jobId ?? null,
        batch_id: k.batchId ?? null,
      })),
    )
    .execute();
}

/** True for the unique violation of a key another submission recorded first. */
export function isIdempotencyKeyTaken(err: unknown): boolean {
  const e = err as { code?: unknown; constraint?: unknown } | null;
  return e?.code === '23505' && e.constraint === PK_CONSTRAINT;
}

/** Deletes up to `batchSize` keys older than 24 hours; returns how many went. */
export async function deleteExpiredIdempotencyKeysBatch(db: Db, batchSize: number): Promise<number> {
  const result = await db
    .deleteFrom('omniscrape.idempotency_keys')
    .where((eb) =>
      eb(
        eb.refTuple('api_key_id', 'key'),
        'in',
        eb
          .selectFrom('omniscrape.idempotency_keys')
          .select(['api_key_id', 'key'])
          .where('created_at', '<=', expiredBefore)
          .limit(batchSize)
          .forUpdate()
          .skipLocked()
          .$asTuple('api_key_id', 'key'),
      ),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
