import { sql } from 'kysely';
import type { Db } from '../schema';

/**
 * Puts a delivery job its worker holds back in pg-boss's queue (schema `pgboss`, PGBOSS_SCHEMA),
 * due at `startAfter`, without counting an attempt. It is what pg-boss's own restore does to the
 * jobs of a group over its localGroupConcurrency (state `created`, started_on cleared, so the next
 * fetch does not increment retry_count), plus the new start time, in one statement; pg-boss has
 * no public call for it. keep_until moves with start_after, as pg-boss's update does, so a deferred
 * job is never purged as expired. Fenced to the attempt fetched (`active` at `retryCount`): a claim
 * that lapsed meanwhile is left alone. The worker's completion, fenced the same way, then finds
 * nothing to complete. True when the job was put back.
 */
export async function deferWebhookDelivery(
  db: Db,
  queue: string,
  attempt: { id: string; retryCount: number },
  startAfter: Date,
): Promise<boolean> {
  const result = await sql`
    update pgboss.job
       set state = 'created',
           started_on = null,
           heartbeat_on = null,
           upsert_by_key = null,
           keep_until = ${startAfter}::timestamptz + (keep_until - start_after),
           start_after = ${startAfter}::timestamptz
     where name = ${queue}
       and id = ${attempt.id}::uuid
       and state = 'active'
       and retry_count = ${attempt.retryCount}`.execute(db);
  return Number(result.numAffectedRows ?? 0) === 1;
}
