import { sql, type Insertable } from 'kysely';
import { setImmediate } from 'node:timers/promises';
import { sealSecret } from '../sealed-secrets';
import type { Db, WebhookDeliveriesTable } from './schema';

// Webhooks (migrations 0009, 0013): the URL a job reports its end to, and every delivery attempt.

/** A job's webhook as a submission gives it. */
export interface JobWebhook {
  url: string;
  /** Absent: deliveries are signed with the key's webhook secret. */
  secret?: string;
}

/**
 * What submissions' sealed secrets are bound to (sealSecret's `context`): they open as such only,
 * not as a key's. Not bound to their job, so that the jobs of a batch sharing its webhook share one
 * sealed value, sealed once.
 */
export const JOB_SECRET_CONTEXT = 'job_webhooks';
/** Seals between two yields to the event loop: a batch of distinct secrets never blocks it long. */
const SEALS_PER_TURN = 256;

/**
 * Writes jobs' webhooks in one statement, in the submission's transaction; a webhook's own secret
 * is sealed with `secretsKey` (once per distinct secret), or kept as given without one.
 */
export async function insertJobWebhooks(
  db: Db,
  rows: readonly { jobId: string; webhook: JobWebhook }[],
  secretsKey: Buffer | undefined,
): Promise<void> {
  if (rows.length === 0) return;
  const sealed = new Map<string, string>();
  const records = [];
  for (const { jobId, webhook } of rows) {
    const { url, secret } = webhook;
    if (secret === undefined || secretsKey === undefined) {
      records.push({ job_id: jobId, url, secret: secret ?? null, sealed_secret: null });
      continue;
    }
    let value = sealed.get(secret);
    if (value === undefined) {
      if (sealed.size % SEALS_PER_TURN === SEALS_PER_TURN - 1) await setImmediate();
      sealed.set(secret, (value = sealSecret(secretsKey, secret, JOB_SECRET_CONTEXT)));
    }
    records.push({ job_id: jobId, url, secret: null, sealed_secret: value });
  }
  await sql`insert into omniscrape.job_webhooks (job_id, url, secret, sealed_secret)
            select job_id, url, secret, sealed_secret
              from jsonb_to_recordset(${JSON.stringify(records)}::jsonb)
                as r(job_id uuid, url text, secret text, sealed_secret text)`.execute(db);
}

/** Of these jobs, those that have a webhook, with their keys. */
export async function jobsWithWebhooks(
  db: Db,
  jobIds: readonly string[],
): Promise<{ jobId: string; apiKeyId: string }[]> {
  if (jobIds.length === 0) return [];
  return db
    .selectFrom('omniscrape.job_webhooks as w')
    .innerJoin('omniscrape.scrape_jobs as j', 'j.id', 'w.job_id')
    .select(['w.job_id as jobId', 'j.api_key_id as apiKeyId'])
    .where('w.job_id', '=', sql<string>`any(${[...jobIds]}::uuid[])`)
    .execute();
}

/**
 * Where a job's end is delivered, its own secret (as given, or sealed) if it has one, and its key
 * (whose webhook secret signs when the job has none).
 */
export async function findWebhookTarget(
  db: Db,
  jobId: string,
): Promise<
  { url: string; secret: string | null; sealed_secret: string | null; api_key_id: string } | undefined
> {
  return db
    .selectFrom('omniscrape.job_webhooks as w')
    .innerJoin('omniscrape.scrape_jobs as j', 'j.id', 'w.job_id')
    .select(['w.url', 'w.secret', 'w.sealed_secret', 'j.api_key_id'])
    .where('w.job_id', '=', jobId)
    .executeTakeFirst();
}

/** Whether the job's end was already delivered successfully (redeliveries aside). */
export async function wasDelivered(db: Db, jobId: string): Promise<boolean> {
  const row = await db
    .selectFrom('omniscrape.webhook_deliveries')
    .select('id')
    .where('job_id', '=', jobId)
    .where('succeeded', '=', true)
    .where('redelivery', '=', false)
    .executeTakeFirst();
  return row !== undefined;
}

/** One attempt as recorded (its job and time are added by recordWebhookDelivery). */
export type WebhookDelivery = Omit<Insertable<WebhookDeliveriesTable>, 'job_id' | 'created_at'>;

export async function recordWebhookDelivery(db: Db, jobId: string, delivery: WebhookDelivery): Promise<void> {
  await db
    .insertInto('omniscrape.webhook_deliveries')
    .values({ job_id: jobId, ...delivery })
    .execute();
}

/** A job's delivery attempts, oldest first. */
export async function listWebhookDeliveries(db: Db, jobId: string) {
  return db
    .selectFrom('omniscrape.webhook_deliveries')
    .select(['attempt', 'redelivery', 'succeeded', 'status_code', 'error', 'duration_ms', 'created_at'])
    .where('job_id', '=', jobId)
    .orderBy('id')
    .execute();
}
