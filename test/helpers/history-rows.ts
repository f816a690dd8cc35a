import { randomUUID } from 'node:crypto';
import type { TestService } from './service';

/** A history row written directly, where a test needs its times and outcome exactly. */
export interface HistoryRow {
  apiKeyId: string;
  createdAt: Date;
  status: 'queued' | 'processing' | 'completed' | 'failed' | 'timed_out' | 'cancelled';
  host?: string;
  /** From creation to start; absent: never started. */
  queueMs?: number;
  /** From start to end; absent: not ended (or never started). */
  runMs?: number;
  charged?: number;
  errorCode?: string;
  batchId?: string;
  /** The engine that produced its outcome; absent: none (no scrape ran, or unfinished). */
  engine?: 'http' | 'browser';
}

/** Inserts history rows as the service would have left them; returns their ids in order. */
export async function insertHistoryRows(
  service: TestService,
  rows: readonly HistoryRow[],
): Promise<string[]> {
  const ids = rows.map(() => randomUUID());
  const at = (base: Date, ms?: number) => (ms === undefined ? null : new Date(base.getTime() + ms));
  const records = rows.map((row, i) => {
    const startedAt = at(row.createdAt, row.queueMs);
    const finishedAt = startedAt && row.runMs !== undefined ? at(startedAt, row.runMs) : null;
    return {
      id: ids[i],
      api_key_id: row.apiKeyId,
      url: `http://${row.host ?? 'example.com'}/${i}`,
      host: row.host ?? 'example.com',
      status: row.status,
      target_status_code: row.status === 'completed' ? 200 : null,
      error_code: row.errorCode ?? null,
      attempts: startedAt ? 1 : 0,
      charged: row.charged ?? 0,
      created_at: row.createdAt,
      started_at: startedAt,
      finished_at: finishedAt ?? (row.status === 'cancelled' ? row.createdAt : null),
      batch_id: row.batchId ?? null,
      engine: row.engine ?? null,
    };
  });
  await service.query(
    `insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status,
            target_status_code, error_code, attempts, charged, created_at, started_at, finished_at, updated_at, batch_id,
            engine)
     select id, api_key_id, 'async', url, host, 'GET', 'raw', 30, status, target_status_code, error_code, attempts,
            charged, created_at, started_at, finished_at, coalesce(finished_at, started_at, created_at), batch_id, engine
       from jsonb_to_recordset($1::jsonb) as r(id uuid, api_key_id uuid, url text, host text, status text,
            target_status_code integer, error_code text, attempts integer, charged numeric, created_at timestamptz,
            started_at timestamptz, finished_at timestamptz, batch_id uuid, engine text)`,
    [JSON.stringify(records)],
  );
  return ids;
}

/**
 * Rows a test writes into past days appear after the roll-up may have gone past those days, which
 * the service's own rows never do (see ROLL_UP_AFTER_SECONDS): this puts the roll-up back before
 * them, as if they had been there all along. Days rolled up already are rolled up again, to the
 * same figures.
 */
export async function rollUpNotYetRun(service: TestService): Promise<void> {
  await service.query('delete from omniscrape.daily_usage_rolled_up');
}

/** percentile_cont: linear interpolation between the two closest ranks, as Postgres computes it. */
export function percentileCont(values: readonly number[], fraction: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const position = fraction * (sorted.length - 1);
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}

/** Midnight UTC `days` days before today's, plus `ms`. */
export function utcDay(daysAgo: number, ms = 0): Date {
  const today = new Date();
  return new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - daysAgo) + ms);
}

/** `YYYY-MM-DD` of a date, in UTC. */
export const isoDay = (date: Date): string => date.toISOString().slice(0, 10);

/** The id of a provisioned key by name. */
export async function keyId(service: TestService, name: string): Promise<string> {
  const [row] = await service.query('select id from omniscrape.api_keys where name = $1', [name]);
  return row.id;
}
