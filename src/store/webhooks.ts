import { sql, type Insertable } from 'kysely';
import type { Db, WebhookDeliveriesTable } from './schema';

// Webhooks (migration 0009): the URL a job reports its end to, and every delivery attempt.

/** A job's webhook as a submission gives it. */
export interface JobWebhook {
  url: string;
  /** Absent: deliveries are signed with the hash of the job's API key. */
  secret?: string;
}

/** Writes jobs' webhooks in one statement, in the submission's transaction. */
export async function insertJobWebhooks(
  db: Db,
  rows: readonly { jobId: string; webhook: JobWebhook }[],
): Promise<void> {
  if (rows.length === 0) return;
  const records = rows.map((r) => ({
    job_id: r.jobId,
    url: r.webhook.url,
    secret: r.webhook.secret ?? null,
  }));
  await sql`insert into omniscrape.job_webhooks (job_id, url, secret)
            select job_id, url, secret
              from jsonb_to_recordset(${JSON.stringify(records)}::jsonb) as r(job_id uuid, url text, secret text)`.execute(
    db,
  );
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

/** Where a job's end is delivered, and the key to sign it with (the secret, else the key's hash). */
export async function findWebhookTarget(
  db: Db,
  jobId: string,
): Promise<{ url: string; signingKey: string } | undefined> {
  return db
    .selectFrom('omniscrape.job_webhooks as w')
    .innerJoin('omniscrape.scrape_jobs as j', 'j.id', 'w.job_id')
    .innerJoin('omniscrape.api_keys as k', 'k.id', 'j.api_key_id')
    .select(['w.url', sql<string>`coalesce(w.secret, k.key_hash)`.as('signingKey')])
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
