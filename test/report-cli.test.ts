import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import pg from 'pg';
import { generateApiKey, insertApiKey } from '../src/db/api-keys';
import { migrateToLatest } from '../src/admin/migrate';
import { openStore, type Store } from '../src/db/pool';
import { runCli } from './helpers/cli';
import { createTestDatabase } from './helpers/database';

// `omniscrape report` against a history seeded over several days, checked against SQL over the
// reporting views: what an analyst with psql would see is what the command prints.
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let store: Store;
let env: Record<string, string>;

/** A key name that CSV must quote (comma, double quotes). */
const ODD_KEY = 'team "x", eu';

beforeAll(async () => {
  database = await createTestDatabase();
  store = openStore(database.url, { max: 2 });
  await migrateToLatest(store.db);
  await seedHistory();
  env = { DATABASE_URL: database.url };
});
/** The login role the reporting-role test creates (roles are the whole server's: a name of its own). */
const REPORTER = `reporter_${randomBytes(4).toString('hex')}`;

afterAll(async () => {
  await store?.close();
  await database?.drop();
  // What the role held was in the test database, dropped with it; now the role can go.
  const admin = new pg.Client({ connectionString: process.env.OMNISCRAPE_TEST_ADMIN_URL });
  await admin.connect();
  await admin.query(`drop role if exists ${REPORTER}`).finally(() => admin.end());
});

/** Jobs of keys alpha, bravo and ODD_KEY, created `hoursAgo`, each run for `runMs`. */
async function seedHistory(): Promise<void> {
  const ids: Record<string, string> = {};
  for (const name of ['alpha', 'bravo', 'charlie', ODD_KEY]) {
    await insertApiKey(store.db, name, generateApiKey(), {});
    ids[name] = (await query('select id from omniscrape.api_keys where name = $1', [name]))[0].id;
  }
  const jobs: [key: string, host: string, status: string, hoursAgo: number, runMs: number, error?: string][] =
    [
      ['alpha', 'a.example', 'completed', 1, 120],
      ['alpha', 'a.example', 'completed', 1.5, 240],
      ['alpha', 'a.example', 'completed', 2, 360],
      ['alpha', 'b.example', 'failed', 2, 80, 'TARGET_UNREACHABLE'],
      ['alpha', 'b.example', 'timed_out', 3, 5000, 'TARGET_TIMEOUT'],
      ['alpha', 'b.example', 'cancelled', 3, 0],
      ['alpha', 'a.example', 'completed', 3 * 24 + 1, 500],
      ['alpha', 'a.example', 'completed', 3 * 24 + 2, 700],
      ['alpha', 'c.example', 'completed', 10 * 24, 900],
      ['bravo', 'b.example', 'completed', 2, 150],
      ['bravo', 'b.example', 'completed', 2.5, 250],
      ['bravo', 'b.example', 'failed', 4, 60, 'TARGET_UNREACHABLE'],
      ['bravo', 'c.example', 'completed', 25, 1000],
      [ODD_KEY, 'a.example', 'completed', 1, 50],
    ];
  for (const [key, host, status, hoursAgo, runMs, error] of jobs) {
    const started = status !== 'cancelled';
    await query(
      `insert into omniscrape.scrape_jobs
         (id, api_key_id, kind, url, host, method, format, timeout_seconds, status, error_code,
          attempts, charged, created_at, started_at, finished_at, engine)
       values (gen_random_uuid(), $1, 'async', 'https://' || $2 || '/', $2, 'GET', 'raw', 30, $3, $4,
          $5, $6, now() - make_interval(secs => $7::float8 * 3600),
          case when $8 then now() - make_interval(secs => $7::float8 * 3600) + interval '10 ms' end,
          case when $8 then now() - make_interval(secs => $7::float8 * 3600) + interval '10 ms' + make_interval(secs => $9::float8 / 1000) end,
          $10)`,
      [
        ids[key],
        host,
        status,
        error ?? null,
        started ? 1 : 0,
        status === 'completed' ? 0.0035 : 0,
        hoursAgo,
        started,
        runMs,
        // a.example's pages were rendered in the browser; the others fetched over HTTP.
        started ? (host === 'a.example' ? 'browser' : 'http') : null,
      ],
    );
  }
}

async function query(text: string, params: unknown[] = []): Promise<any[]> {
  return (await store.pool.query(text, params)).rows;
}

/** The daily usage SQL gives for --since `interval` (and --key), each value as the report's JSON has it. */
async function usageBySql(interval: string, key?: string): Promise<any[]> {
  const rows = await query(
    `select day::text as day, api_key_name, jobs::int, completed::int, failed::int, timed_out::int,
            cancelled::int, charged::text, p50_run_ms, p95_run_ms
       from omniscrape_reporting.daily_usage
      where day >= ((now() - $1::interval) at time zone 'UTC')::date
        and ($2::text is null or api_key_name = $2)
      order by day, api_key_name`,
    [interval, key ?? null],
  );
  expect(rows.length).toBeGreaterThan(0);
  return rows;
}

async function hostsBySql(): Promise<any[]> {
  return query(
    `select host, jobs::int, success_rate, p95_run_ms, top_error_code, last_failure_at, rendered::int
       from omniscrape_reporting.host_health order by jobs desc, host`,
  );
}

/** The body rows of the cli-table3 tables in `text` (header rows excluded), as trimmed cells. */
function tableRows(text: string): string[][] {
  const rows = text
    .split('\n')
    .filter((line) => line.startsWith('│'))
    .map((line) =>
      line
        .split('│')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
  return rows.filter((cells) => cells[0] !== 'day' && cells[0] !== 'host');
}

const ms = (value: number | null) => (value === null ? '—' : String(Math.round(value)));

async function report(args: string[], extraEnv: Record<string, string> = {}) {
  return runCli(['report', ...args], { ...env, ...extraEnv });
}

describe('omniscrape report', () => {
  test('the table shows each day and key of the last 7 days, and each host of the last 24 h, as the views have them', async () => {
    const { code, stdout, stderr } = await report([]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const [usageText, hostText] = stdout.split('Host health, last 24 hours, all keys');
    expect(usageText).toMatch(/^Daily usage, UTC days from \d{4}-\d\d-\d\d, all keys\n/);

    const usage = await usageBySql('7 days');
    expect(tableRows(usageText!)).toEqual(
      usage.map((r) => [
        r.day,
        r.api_key_name,
        String(r.jobs),
        String(r.completed),
        String(r.failed),
        String(r.timed_out),
        String(r.cancelled),
        r.charged,
        ms(r.p50_run_ms),
        ms(r.p95_run_ms),
      ]),
    );
    const hosts = await hostsBySql();
    // c.example's jobs are older than 24 h.
    expect(hosts.map((h) => h.host).sort()).toEqual(['a.example', 'b.example']);
    expect(hosts.find((h) => h.host === 'a.example')).toMatchObject({ jobs: 4, rendered: 4 });
    expect(hosts.find((h) => h.host === 'b.example')).toMatchObject({ rendered: 0 });
    expect(tableRows(hostText!)).toEqual(
      hosts.map((h) => [
        h.host,
        String(h.jobs),
        String(h.rendered),
        h.success_rate === null ? '—' : `${(h.success_rate * 100).toFixed(1)}%`,
        ms(h.p95_run_ms),
        h.top_error_code ?? '—',
        h.last_failure_at?.toISOString() ?? '—',
      ]),
    );
  });

  test('--format json carries every column of both views, unrounded', async () => {
    const { code, stdout } = await report(['--format', 'json', '--since', '30d']);
    expect(code).toBe(0);
    const printed = JSON.parse(stdout);
    expect(printed.key).toBeNull();
    expect(printed.first_day).toBe(
      (await query(`select ((now() - interval '30 days') at time zone 'UTC')::date::text as d`))[0].d,
    );
    expect(printed.daily_usage).toEqual(
      (await usageBySql('30 days')).map((r) => ({ ...r, charged: Number(r.charged) })),
    );
    expect(printed.host_health).toEqual(
      (await hostsBySql()).map((h) => ({ ...h, last_failure_at: h.last_failure_at?.toISOString() ?? null })),
    );
  });

  test('--format csv is two tables a CSV parser reads back as the views have them, quoting where needed', async () => {
    const { code, stdout } = await report(['--format', 'csv']);
    expect(code).toBe(0);
    const [usageCsv, hostCsv] = stdout.split('\n\n');
    expect(usageCsv!.split('\n')[0]).toBe(
      'day,api_key_name,jobs,completed,failed,timed_out,cancelled,charged,p50_run_ms,p95_run_ms',
    );
    expect(stdout).toContain('"team ""x"", eu"');
    /** A row as CSV text: null an empty field; a time left to the caller. */
    const asText = (row: Record<string, string | number | null>) =>
      Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === null ? '' : String(v)]));
    const usage = await usageBySql('7 days');
    expect(parse(usageCsv!, { columns: true })).toEqual(usage.map(asText));
    const hosts = await hostsBySql();
    expect(parse(hostCsv!, { columns: true })).toEqual(
      hosts.map((h) => ({
        ...asText({ ...h, last_failure_at: null }),
        last_failure_at: h.last_failure_at?.toISOString() ?? '',
      })),
    );
  });

  test("--key shows only that key's usage; a key with odd characters works too", async () => {
    const alpha = await report(['--key', 'alpha', '--format', 'json', '--since', '30d']);
    expect(alpha.code).toBe(0);
    const printed = JSON.parse(alpha.stdout);
    expect(printed.key).toBe('alpha');
    expect(printed.daily_usage.map((r: any) => r.day)).toEqual(
      (await usageBySql('30 days', 'alpha')).map((r) => r.day),
    );
    expect(new Set(printed.daily_usage.map((r: any) => r.api_key_name))).toEqual(new Set(['alpha']));

    const odd = await report(['--key', ODD_KEY]);
    expect(odd.code).toBe(0);
    expect(odd.stdout).toContain(`Daily usage, UTC days from `);
    expect(odd.stdout).toContain(`key "${ODD_KEY}"`);
    expect(tableRows(odd.stdout.split('Host health')[0]!).map((r) => r[1])).toEqual([ODD_KEY]);
  });

  test('--since picks whole UTC days: 2d leaves out the days before, 30d takes in the older job, 48h is 2d', async () => {
    const usageDays = async (since: string) =>
      JSON.parse(
        (await report(['--since', since, '--format', 'json', '--key', 'alpha'])).stdout,
      ).daily_usage.map((r: any) => r.day);
    const twoDays = await usageDays('2d');
    expect(twoDays).toEqual((await usageBySql('2 days', 'alpha')).map((r) => r.day));
    const [threeDaysAgo, tenDaysAgo] = (
      await query(
        `select ((now() - interval '73 hours') at time zone 'UTC')::date::text as a,
                ((now() - interval '240 hours') at time zone 'UTC')::date::text as b`,
      )
    ).map((r) => [r.a, r.b])[0]!;
    expect(twoDays).not.toContain(threeDaysAgo);
    expect(await usageDays('48h')).toEqual(twoDays);
    expect(await usageDays('1w')).toEqual((await usageBySql('7 days', 'alpha')).map((r) => r.day));
    const thirty = await usageDays('30d');
    expect(thirty).toContain(threeDaysAgo);
    expect(thirty).toContain(tenDaysAgo);
  });

  test.each([
    [['--since', '7x'], '--since: "7x" is not a span like 12h, 7d or 4w'],
    [['--since', '0d'], '--since: "0d" is not a span like 12h, 7d or 4w'],
    [['--since', '7'], '--since: "7" is not a span like 12h, 7d or 4w'],
    [['--since', '7 days'], '--since: "7 days" is not a span like 12h, 7d or 4w'],
    [['--format', 'xml'], '--format: "xml" is not one of table, csv, json'],
    [
      ['--key', 'nobody'],
      '--key: no key named "nobody" has any jobs in the reporting views (names are case-sensitive)',
    ],
    [
      ['--key', 'charlie'],
      '--key: no key named "charlie" has any jobs in the reporting views (names are case-sensitive)',
    ],
  ])('%j prints one line and exits non-zero', async (args, message) => {
    const { code, stdout, stderr } = await report(args);
    expect({ code, stdout, stderr }).toEqual({ code: 1, stdout: '', stderr: `omniscrape: ${message}\n` });
  });

  test('an unknown option is one line with a suggestion, without the help text, and exits non-zero', async () => {
    const { code, stdout, stderr } = await report(['--frmat', 'csv']);
    expect({ code, stdout, stderr }).toEqual({
      code: 1,
      stdout: '',
      stderr: "omniscrape: unknown option '--frmat' (Did you mean --format?)\n",
    });
  });

  test('a role granted by `omniscrape reporting grant` (the views, nothing else) runs every report', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-report-'));
    const password = randomBytes(12).toString('hex');
    try {
      fs.writeFileSync(path.join(dir, 'password'), password + '\n', { mode: 0o600 });
      const granted = await runCli(
        ['reporting', 'grant', REPORTER, '--create', '--password-file', path.join(dir, 'password')],
        env,
      );
      expect(granted.code).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const asReporter = new URL(database.url);
    asReporter.username = REPORTER;
    asReporter.password = password;
    const reporterEnv = { OMNISCRAPE_REPORTING_DATABASE_URL: asReporter.toString() };
    for (const args of [[], ['--format', 'csv', '--since', '30d'], ['--format', 'json', '--key', 'alpha']]) {
      const bySuperuser = await report(args);
      expect(bySuperuser.code).toBe(0);
      expect(await report(args, reporterEnv)).toEqual(bySuperuser);
    }
    // Even the check of an unknown key reads the views alone.
    expect(await report(['--key', 'nobody'], reporterEnv)).toEqual(await report(['--key', 'nobody']));
  });

  test('OMNISCRAPE_REPORTING_DATABASE_URL is read instead of DATABASE_URL, and named when it is wrong', async () => {
    const nowhere = 'postgres://postgres:x@127.0.0.1:1/none';
    const viaReporting = await report(['--format', 'json'], {
      DATABASE_URL: nowhere,
      OMNISCRAPE_REPORTING_DATABASE_URL: database.url,
    });
    expect(viaReporting.code).toBe(0);
    expect(JSON.parse(viaReporting.stdout).daily_usage.length).toBeGreaterThan(0);

    const wrong = await report([], { OMNISCRAPE_REPORTING_DATABASE_URL: nowhere });
    expect({ code: wrong.code, stdout: wrong.stdout }).toEqual({ code: 1, stdout: '' });
    expect(wrong.stderr).toBe(
      'omniscrape: cannot reach Postgres at 127.0.0.1:1/none: connection refused (is it running? check OMNISCRAPE_REPORTING_DATABASE_URL)\n',
    );
  });

  test('a database without the reporting views is told how to get them, in one line, and nothing is migrated', async () => {
    const fresh = await createTestDatabase();
    try {
      const { code, stderr } = await report([], { DATABASE_URL: fresh.url });
      expect(code).toBe(1);
      expect(stderr).toMatch(
        /^omniscrape: the reporting views are not in 127\.0\.0\.1:\d+\/omniscrape_test_\w+: run `omniscrape migrate` against the primary \(DATABASE_URL\), then report again\n$/,
      );
      const client = openStore(fresh.url, { max: 1 });
      try {
        const { rows } = await client.pool.query(
          `select count(*)::int as n from pg_namespace where nspname like 'omniscrape%'`,
        );
        expect(rows[0].n).toBe(0);
      } finally {
        await client.close();
      }
    } finally {
      await fresh.drop();
    }
  });
});
