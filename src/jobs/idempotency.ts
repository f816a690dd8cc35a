import { createHash } from 'node:crypto';
import { idempotencyKeyReused } from '../domain-errors';
import type { ScrapeRequest } from '../scraper/scrape-request';
import {
  findIdempotentSubmission,
  isIdempotencyKeyTaken,
  type IdempotentSubmission,
} from '../db/idempotency-keys';
import type { Db } from '../db/schema';
import type { JobWebhook } from '../db/webhooks';

/** An Idempotency-Key with the hash of what it came with. */
export interface Idempotency {
  key: string;
  hash: string;
}

/**
 * The identity of a submission for idempotency: its validated form (defaults filled in), its
 * route, and the webhooks it names (absent when none, so older hashes keep their meaning), hashed,
 * so a key used for a job cannot answer a batch and the reverse.
 */
export function idempotencyOf(
  key: string,
  submission:
    | { job: ScrapeRequest; webhook?: JobWebhook }
    | { batch: readonly ScrapeRequest[]; webhooks?: readonly (JobWebhook | undefined)[] },
): Idempotency {
  return { key, hash: createHash('sha256').update(JSON.stringify(submission)).digest('hex') };
}

/**
 * What the key created in the last 24 hours with the same submission, or undefined when it is new;
 * throws IDEMPOTENCY_KEY_REUSED when it came with another submission.
 */
export async function earlierSubmission(
  db: Db,
  apiKeyId: string,
  idempotency: Idempotency,
): Promise<IdempotentSubmission | undefined> {
  const earlier = await findIdempotentSubmission(db, apiKeyId, idempotency.key);
  if (earlier && earlier.requestHash !== idempotency.hash) throw idempotencyKeyReused();
  return earlier;
}

/**
 * Runs a submission at most once per idempotency key: a key used in the last 24 hours answers what
 * it created (`answer`), before any limit is checked, since that submission was accepted; a new key
 * runs `create`, which records the key in the submission's own transaction. Of two concurrent
 * submissions with one key only the first commits; the second's insert of the key fails after that
 * commit, and it answers the first's work. Without a key, `create` simply runs.
 */
export async function submitOnce<T>(
  db: Db,
  apiKeyId: string,
  idempotency: Idempotency | undefined,
  answer: (earlier: IdempotentSubmission) => T | undefined | Promise<T | undefined>,
  create: () => Promise<T>,
): Promise<T> {
  if (!idempotency) return create();
  const replay = async () => {
    const earlier = await earlierSubmission(db, apiKeyId, idempotency);
    return earlier && (await answer(earlier));
  };
  const earlier = await replay();
  if (earlier !== undefined) return earlier;
  try {
    return await create();
  } catch (err) {
    const first = isIdempotencyKeyTaken(err) ? await replay() : undefined;
    if (first !== undefined) return first;
    throw err;
  }
}
