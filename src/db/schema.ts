// The project's own tables (schema `omniscrape`), declared once: every query is typed from these.
// The migrations in migrations/ create them; a column added there is added here too.
import type { ColumnType, Generated, GeneratedAlways, Insertable, Kysely, Selectable } from 'kysely';

/** Timestamps read back as Date; written as Date or left to their defaults. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

/** Every status a job can be in (the check constraint of migration 0006; the changes: job-status.ts). */
import { JOB_STATUSES, type JobStatus } from '../contract/errors';

export { JOB_STATUSES, type JobStatus };

export interface ApiKeysTable {
  id: Generated<string>;
  name: string;
  key_hash: string;
  key_prefix: string;
  created_at: Generated<Date>;
  revoked_at: Timestamp | null;
  /** NULL: the service default (OMNISCRAPE_DEFAULT_CONCURRENCY). */
  concurrency_limit: number | null;
  /** NULL: the service default (OMNISCRAPE_DEFAULT_MAX_QUEUED). */
  max_queued: number | null;
  /** NULL: no quota. */
  monthly_quota: number | null;
  /** Where this key's jobs report their end when a submission names no webhook; NULL: nowhere. */
  webhook_url: string | null;
  /** May open the dashboard (migration 0011); set only by `keys create --admin`. */
  is_admin: Generated<boolean>;
}

export interface KeyUsageTable {
  api_key_id: string;
  /** First day of the UTC month. */
  month: ColumnType<Date, string, string>;
  successful_scrapes: Generated<number>;
}

export interface ScrapeJobsTable {
  id: string;
  api_key_id: string;
  kind: 'sync' | 'async';
  url: string;
  host: string;
  method: string;
  format: string;
  timeout_seconds: number;
  status: JobStatus;
  target_status_code: number | null;
  error_code: string | null;
  error_message: string | null;
  attempts: Generated<number>;
  /** numeric(12,6): pg hands it back as a string so no precision is lost. */
  charged: ColumnType<string, number | string | undefined, number | string>;
  result_bytes: number | null;
  elapsed_ms: number | null;
  created_at: Generated<Date>;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  updated_at: Generated<Date>;
  result_expires_at: Timestamp | null;
  /**
   * A `processing` row's last sign of life: an async job's worker heartbeat (migration 0003), a
   * sync scrape's lease renewed by its API process (migration 0005).
   */
  heartbeat_at: Timestamp | null;
  /** The batch it was submitted in (migration 0010; NULL for a single submission or a sync scrape). */
  batch_id: string | null;
  /**
   * The `X-Request-Id` of the request that submitted it (migration 0012; a batch's jobs share
   * their request's; NULL for jobs older than that migration).
   */
  request_id: string | null;
  /**
   * The engine that produced its outcome (migration 0014): `browser` for a rendered page. NULL until
   * it ends, and for a job that ended without a scrape (cancelled, lost, abandoned) or before 0014.
   */
  engine: ScrapeEngine | null;
}

/** The engines a scrape runs on (scrape_jobs.engine's check). */
export type ScrapeEngine = 'http' | 'browser';

export interface JobResultsTable {
  job_id: string;
  result: ColumnType<unknown, string, string>;
  expires_at: Timestamp;
}

export interface IdempotencyKeysTable {
  api_key_id: string;
  /** The client's `Idempotency-Key` header. */
  key: string;
  /** SHA-256 of the validated request: the same key with another request is refused. */
  request_hash: string;
  /** What the key created: a job (POST /v1/scrape/async) or a batch (POST /v1/scrape/batch). */
  job_id: string | null;
  batch_id: string | null;
  created_at: Generated<Date>;
}

export interface BatchesTable {
  id: string;
  api_key_id: string;
  job_count: number;
  created_at: Generated<Date>;
}

/** A batch's jobs in request order (`position` from 0). */
export interface BatchJobsTable {
  batch_id: string;
  position: number;
  job_id: string;
}

/** The webhook a job reports its end to (migration 0009). */
export interface JobWebhooksTable {
  job_id: string;
  url: string;
  /**
   * The submission's own secret as given, when the service had no OMNISCRAPE_SECRETS_KEY to seal
   * it with (else NULL). Both NULL: deliveries are signed with the key's webhook secret.
   */
  secret: string | null;
  /** The submission's own secret, sealed (migration 0013, src/sealed-secrets.ts). */
  sealed_secret: string | null;
}

/**
 * A key's webhook signing secret, sealed (migration 0013). NULL `retires_at`: the key's current
 * one; else one a rotation replaced, which signs too until then.
 */
export interface KeyWebhookSecretsTable {
  id: GeneratedAlways<string>;
  api_key_id: string;
  sealed_secret: string;
  created_at: Generated<Date>;
  retires_at: Timestamp | null;
}

/** One delivery attempt of a job's webhook. */
export interface WebhookDeliveriesTable {
  id: GeneratedAlways<string>;
  job_id: string;
  /** pg-boss's attempt number of the delivery job, from 1. */
  attempt: number;
  /** Sent by POST /v1/jobs/{id}/webhooks/redeliver rather than by the job's end. */
  redelivery: boolean;
  succeeded: boolean;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  created_at: Generated<Date>;
}

/**
 * Usage per UTC day and key, rolled up from the history before the retention may delete it
 * (migration 0010, maintenance/history-retention.ts); omniscrape_reporting.daily_usage reads it.
 */
export interface DailyUsageRollupTable {
  day: ColumnType<Date, string, string>;
  api_key_id: string;
  jobs: ColumnType<string, number, number>;
  completed: ColumnType<string, number, number>;
  failed: ColumnType<string, number, number>;
  timed_out: ColumnType<string, number, number>;
  cancelled: ColumnType<string, number, number>;
  /** The day's jobs still queued or processing at the roll-up: the day is rolled up again when this changes. */
  unfinished: ColumnType<string, number, number>;
  charged: ColumnType<string, number | string, number | string>;
  p50_run_ms: number | null;
  p95_run_ms: number | null;
  rolled_up_at: Generated<Date>;
  /** When the retention deleted the (day, key)'s history; from then on it is never rolled up again. */
  history_deleted_at: Timestamp | null;
}

/** One row: the last day the roll-up has done (days without jobs included). */
export interface DailyUsageRolledUpTable {
  through: ColumnType<Date, string, string>;
  one_row: Generated<boolean>;
}

/** Steps migrations left to run after their commit (see runDeferredSteps). */
export interface DeferredStepsTable {
  name: string;
  done_at: Timestamp | null;
}

/** A dashboard sign-in (migration 0011): the cookie holds the token, this row only its SHA-256 digest. */
export interface DashboardSessionsTable {
  token_hash: string;
  api_key_id: string;
  created_at: Generated<Date>;
  expires_at: Timestamp;
}

export interface Database {
  'omniscrape.api_keys': ApiKeysTable;
  'omniscrape.scrape_jobs': ScrapeJobsTable;
  'omniscrape.job_results': JobResultsTable;
  'omniscrape.key_usage': KeyUsageTable;
  'omniscrape.idempotency_keys': IdempotencyKeysTable;
  'omniscrape.batches': BatchesTable;
  'omniscrape.batch_jobs': BatchJobsTable;
  'omniscrape.job_webhooks': JobWebhooksTable;
  'omniscrape.webhook_deliveries': WebhookDeliveriesTable;
  'omniscrape.daily_usage_rollup': DailyUsageRollupTable;
  'omniscrape.daily_usage_rolled_up': DailyUsageRolledUpTable;
  'omniscrape.deferred_steps': DeferredStepsTable;
  'omniscrape.dashboard_sessions': DashboardSessionsTable;
  'omniscrape.key_webhook_secrets': KeyWebhookSecretsTable;
}

export type Db = Kysely<Database>;

export type ScrapeJobRow = Selectable<ScrapeJobsTable>;

/** The history columns a job's owner sees (the job object's fields, its result apart). */
export const PUBLIC_JOB_COLUMNS = [
  'id',
  'status',
  'url',
  'created_at',
  'updated_at',
  'error_code',
  'error_message',
  'result_expires_at',
] as const satisfies readonly (keyof ScrapeJobsTable)[];
export type PublicJobRow = Pick<ScrapeJobRow, (typeof PUBLIC_JOB_COLUMNS)[number]>;
export type NewScrapeJob = Insertable<ScrapeJobsTable>;
