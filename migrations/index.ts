import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import * as m0001 from './0001_job_history_and_keys';
import * as m0002 from './0002_key_limits_and_usage';
import * as m0003 from './0003_job_heartbeats';
import * as m0004 from './0004_key_slots_function_and_one_index_fewer';
import * as m0005 from './0005_sync_scrape_leases';
import * as m0006 from './0006_cancelled_status';
import * as m0007 from './0007_idempotency_keys';
import * as m0008 from './0008_batches';
import * as m0009 from './0009_webhooks';
import * as m0010 from './0010_reporting';
import * as m0011 from './0011_admin_keys_and_sessions';
import * as m0012 from './0012_request_ids';
import * as m0013 from './0013_webhook_signing_secrets';
import * as m0014 from './0014_job_engines';

/**
 * Every migration, in order. Listed by hand rather than read from the folder so the same list
 * works from TypeScript sources (tests) and from compiled output (the installed binary).
 */
export const migrations: Record<string, Migration> = {
  '0001_job_history_and_keys': m0001,
  '0002_key_limits_and_usage': m0002,
  '0003_job_heartbeats': m0003,
  '0004_key_slots_function_and_one_index_fewer': m0004,
  '0005_sync_scrape_leases': m0005,
  '0006_cancelled_status': m0006,
  '0007_idempotency_keys': m0007,
  '0008_batches': m0008,
  '0009_webhooks': m0009,
  '0010_reporting': m0010,
  '0011_admin_keys_and_sessions': m0011,
  '0012_request_ids': m0012,
  '0013_webhook_signing_secrets': m0013,
  '0014_job_engines': m0014,
};

/**
 * Steps migrations leave to run after they commit, outside any transaction (a backfill in short
 * batches, an index built CONCURRENTLY), by name; a migration records their names as pending in
 * `omniscrape.deferred_steps`, and migrateToLatest runs the pending ones.
 */
export const deferredSteps: Record<string, (db: Kysely<any>) => Promise<void>> = {
  ...m0010.deferred,
  ...m0014.deferred,
};
