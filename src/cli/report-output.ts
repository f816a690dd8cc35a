import Table from 'cli-table3';
import { stringify } from 'csv-stringify/sync';
import type { DailyUsageRow, HostHealthRow } from '../db/reporting/reports';

export const REPORT_FORMATS = ['table', 'csv', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** What `omniscrape report` read, ready to print. */
export interface Report {
  /** The first UTC day of the usage (the day `--since` falls in). */
  firstDay: string;
  keyName: string | undefined;
  usage: DailyUsageRow[];
  hosts: HostHealthRow[];
}

const USAGE_COLUMNS = [
  'day',
  'api_key_name',
  'jobs',
  'completed',
  'failed',
  'timed_out',
  'cancelled',
  'charged',
  'p50_run_ms',
  'p95_run_ms',
] as const satisfies readonly (keyof DailyUsageRow)[];
const HOST_COLUMNS = [
  'host',
  'jobs',
  'success_rate',
  'p95_run_ms',
  'top_error_code',
  'last_failure_at',
  'rendered',
] as const satisfies readonly (keyof HostHealthRow)[];

export function formatReport(report: Report, format: ReportFormat): string {
  if (format === 'json') return JSON.stringify(asJson(report), null, 2) + '\n';
  if (format === 'csv') return asCsv(report);
  return asTables(report);
}

/**
 * One document; the rows keep the views' column names and values (charged as a number, like the
 * API's `billing.charged`; times in ISO 8601), so a script reads the same fields as SQL would give.
 */
function asJson({ firstDay, keyName, usage, hosts }: Report) {
  return {
    first_day: firstDay,
    key: keyName ?? null,
    daily_usage: usage.map((row) => ({ ...row, charged: Number(row.charged) })),
    host_health: hosts,
  };
}

/**
 * Two CSV tables, daily usage then host health, each with its header row, separated by an empty
 * line (a spreadsheet shows both; a script splits on the empty line). Values unrounded, as SQL
 * gives them; null is an empty field.
 */
function asCsv({ usage, hosts }: Report): string {
  const csv = (rows: object[], columns: readonly string[]) =>
    stringify(rows, {
      header: true,
      columns: [...columns],
      cast: { date: (value) => value.toISOString() },
    });
  return `${csv(usage, USAGE_COLUMNS)}\n${csv(hosts, HOST_COLUMNS)}`;
}

const NONE = '—';
const ms = (value: number | null) => (value === null ? NONE : String(Math.round(value)));
const percent = (value: number | null) => (value === null ? NONE : `${(value * 100).toFixed(1)}%`);

/** For people: rounded figures under a title that says what they cover. */
function asTables({ firstDay, keyName, usage, hosts }: Report): string {
  const usageTable = newTable(
    ['day', 'key', 'jobs', 'completed', 'failed', 'timed out', 'cancelled', 'charged', 'p50 ms', 'p95 ms'],
    'llrrrrrrrr',
  );
  for (const row of usage) {
    usageTable.push([
      row.day,
      row.api_key_name,
      row.jobs,
      row.completed,
      row.failed,
      row.timed_out,
      row.cancelled,
      row.charged,
      ms(row.p50_run_ms),
      ms(row.p95_run_ms),
    ]);
  }
  const hostTable = newTable(
    ['host', 'jobs', 'rendered', 'success', 'p95 ms', 'top error', 'last failure'],
    'lrrrrll',
  );
  for (const row of hosts) {
    hostTable.push([
      row.host,
      row.jobs,
      row.rendered,
      percent(row.success_rate),
      ms(row.p95_run_ms),
      row.top_error_code ?? NONE,
      row.last_failure_at?.toISOString() ?? NONE,
    ]);
  }
  const whose = keyName === undefined ? 'all keys' : `key "${keyName}"`;
  return [
    `Daily usage, UTC days from ${firstDay}, ${whose}`,
    usage.length ? usageTable.toString() : '(no jobs)',
    '',
    'Host health, last 24 hours, all keys',
    hosts.length ? hostTable.toString() : '(no jobs)',
    '',
  ].join('\n');
}

/** A table without colours; `aligns` has one letter per column: `l` text, `r` figures. */
function newTable(head: string[], aligns: string) {
  return new Table({
    head,
    colAligns: [...aligns].map((a) => (a === 'r' ? 'right' : 'left')),
    style: { head: [], border: [] },
  });
}
