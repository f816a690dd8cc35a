// The reporting views (schema `omniscrape_reporting`, migrations 0010, 0012 and 0014;
// docs/reporting.md documents them column by column), as the reporting handle reads them. Views only gain columns, so
// the interfaces here only ever grow. Read-only: nothing is insertable or updatable.
import type { ColumnType, Kysely } from 'kysely';

/** A column of a view: selectable as T, never written. */
type ViewColumn<T> = ColumnType<T, never, never>;

/** One row per job of the history. */
export interface JobHistoryView {
  job_id: ViewColumn<string>;
  api_key_name: ViewColumn<string>;
  batch_id: ViewColumn<string | null>;
  kind: ViewColumn<'sync' | 'async'>;
  url: ViewColumn<string>;
  host: ViewColumn<string>;
  status: ViewColumn<string>;
  status_code: ViewColumn<number | null>;
  error_code: ViewColumn<string | null>;
  created_at: ViewColumn<Date>;
  started_at: ViewColumn<Date | null>;
  finished_at: ViewColumn<Date | null>;
  queue_ms: ViewColumn<number | null>;
  run_ms: ViewColumn<number | null>;
  attempts: ViewColumn<number>;
  /** numeric: an exact decimal string. */
  charged: ViewColumn<string>;
  result_bytes: ViewColumn<number | null>;
  result_expired: ViewColumn<boolean | null>;
  /** The X-Request-Id of the request that submitted it (migration 0012); null for older jobs. */
  request_id: ViewColumn<string | null>;
  /** The engine that produced its outcome, `http` or `browser` (migration 0014); null: no scrape ran, or older. */
  engine: ViewColumn<'http' | 'browser' | null>;
}

/** Per UTC day (of `created_at`) and key; days past the history's retention come from the roll-up. */
export interface DailyUsageView {
  /** A calendar day, `YYYY-MM-DD` (the reporting pool reads `date` as text: no time zone shift). */
  day: ViewColumn<string>;
  api_key_name: ViewColumn<string>;
  jobs: ViewColumn<number>;
  completed: ViewColumn<number>;
  failed: ViewColumn<number>;
  timed_out: ViewColumn<number>;
  cancelled: ViewColumn<number>;
  /** numeric: an exact decimal string. */
  charged: ViewColumn<string>;
  p50_run_ms: ViewColumn<number | null>;
  p95_run_ms: ViewColumn<number | null>;
}

/** Per host over the last 24 hours. */
export interface HostHealthView {
  host: ViewColumn<string>;
  jobs: ViewColumn<number>;
  /** Completed over finished jobs, 0..1; null when none has finished. */
  success_rate: ViewColumn<number | null>;
  p95_run_ms: ViewColumn<number | null>;
  top_error_code: ViewColumn<string | null>;
  last_failure_at: ViewColumn<Date | null>;
  /** Of its jobs, those rendered in headless Chromium (migration 0014). */
  rendered: ViewColumn<number>;
}

export interface ReportingDatabase {
  'omniscrape_reporting.job_history': JobHistoryView;
  'omniscrape_reporting.daily_usage': DailyUsageView;
  'omniscrape_reporting.host_health': HostHealthView;
}

/** The reporting handle's type (ServiceContext.reporting, the report command). */
export type ReportingDb = Kysely<ReportingDatabase>;
