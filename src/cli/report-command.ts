import type { Command } from 'commander';
import { causes } from '../domain-errors';
import { StartupFailure } from '../startup-failure';
import { openReportingDb } from '../db/pool';
import { keyHasUsage, readDailyUsage, readHostHealth } from '../db/reporting/reports';
import type { ReportingDb } from '../db/reporting/reporting-schema';
import { config, connecting, databaseUrlFor, fail, oneLineErrors } from './common';
import { formatReport, REPORT_FORMATS, type Report, type ReportFormat } from './report-output';
import { describeServer } from './startup-errors';

const HOUR_MS = 60 * 60 * 1000;
const SPAN_UNITS_MS = { h: HOUR_MS, d: 24 * HOUR_MS, w: 7 * 24 * HOUR_MS };

/** `--since`: N hours, days or weeks back from `now` (`12h`, `7d`, `4w`); undefined for any other spelling. */
export function sinceFrom(span: string, now: Date): Date | undefined {
  const match = /^([1-9]\d{0,4})([hdw])$/.exec(span);
  if (!match) return undefined;
  return new Date(now.getTime() - Number(match[1]) * SPAN_UNITS_MS[match[2] as keyof typeof SPAN_UNITS_MS]);
}

interface ReportOptions {
  since: string;
  key?: string;
  format: string;
}

/** `omniscrape report`: daily usage and host health, read from the reporting views. */
export function addReportCommand(program: Command): void {
  oneLineErrors(program.command('report'))
    .description(
      'print daily usage per key and host health (reads OMNISCRAPE_REPORTING_DATABASE_URL, else DATABASE_URL)',
    )
    .option('--since <span>', 'how far back the daily usage goes: Nh, Nd or Nw (whole UTC days)', '7d')
    .option('--key <name>', 'only the usage of this key')
    .option('--format <format>', `output: ${REPORT_FORMATS.join(', ')}`, 'table')
    .action(async (options: ReportOptions) => {
      const since =
        sinceFrom(options.since, new Date()) ??
        fail(`--since: "${options.since}" is not a span like 12h, 7d or 4w`);
      const format = (REPORT_FORMATS as readonly string[]).includes(options.format)
        ? (options.format as ReportFormat)
        : fail(`--format: "${options.format}" is not one of ${REPORT_FORMATS.join(', ')}`);
      const report = await readReport(since, options.key);
      process.stdout.write(formatReport(report, format));
    });
}

/**
 * Reads from the reporting database (a replica, when set) without migrating anything: a replica is
 * read-only, and a report must not change the schema it reports on.
 */
async function readReport(since: Date, keyName: string | undefined): Promise<Report> {
  const cfg = config();
  const url = cfg.reportingDatabaseUrl ?? databaseUrlFor(cfg);
  const setting = cfg.reportingDatabaseUrl ? 'OMNISCRAPE_REPORTING_DATABASE_URL' : 'DATABASE_URL';
  const db = openReportingDb(url, { max: 2, applicationName: 'omniscrape-report' });
  try {
    return await connecting(url, () => readViews(db, since, keyName), setting).catch((err: unknown) => {
      throw explainMissingViews(err, url) ?? err;
    });
  } finally {
    await db.destroy();
  }
}

async function readViews(db: ReportingDb, since: Date, keyName: string | undefined): Promise<Report> {
  const [usage, hosts] = await Promise.all([readDailyUsage(db, { since, keyName }), readHostHealth(db)]);
  if (keyName !== undefined && usage.length === 0 && !(await keyHasUsage(db, keyName)))
    fail(`--key: no key named "${keyName}" has any jobs in the reporting views (names are case-sensitive)`);
  return { firstDay: since.toISOString().slice(0, 10), keyName, usage, hosts };
}

/** A database whose migrations predate the reporting views (or a replica of one). */
function explainMissingViews(err: unknown, url: string): StartupFailure | undefined {
  const missing = [...causes(err)].some((e) => e.code === '42P01' || e.code === '3F000');
  if (!missing) return undefined;
  return new StartupFailure(
    `the reporting views are not in ${describeServer(url)}: run \`omniscrape migrate\` against the primary (DATABASE_URL), then report again`,
    'OTHER',
    { cause: err },
  );
}
