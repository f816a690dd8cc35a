/**
 * `npm run bench:reporting [-- --rows N] [--data DIR]` — the reporting views at size: fills the job
 * history with N rows (default 10,000,000) spread over the retention period as a running
 * installation would hold them (20 keys, 500 hosts, both skewed; mostly completed, some failed,
 * timed out and cancelled; results expired but the last day's), rolls finished days up as the
 * scheduled cleanup does, then runs each view's typical queries with
 * `EXPLAIN (ANALYZE, BUFFERS)`: the median execution time of 5 runs (after one warm-up), and the
 * last run's plan. Results go to bench/results/reporting.json.
 *
 * `--data DIR` keeps the Postgres data directory: a second run with the same DIR skips the filling
 * (minutes for 10M rows) and only times the queries. `--retention-days N` then runs the scheduled
 * cleanup's retention once with OMNISCRAPE_HISTORY_DAYS=N and reports what it did (it deletes the
 * older days from a kept DIR for good).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../src/postgres-server/embedded-postgres';
import { migrateToLatest } from '../src/admin/migrate';
import { openStore } from '../src/db/pool';
import { freePort } from '../test/helpers/free-port';
import Table from 'cli-table3';
import { timeDashboardQueries } from './dashboard-queries';
import { EXAMPLE_QUESTIONS, REPORTING_QUERIES, rollUpSeededDays } from './reporting-queries';
import { measureRetention } from './reporting-retention';

const log = (line: string) => process.stderr.write(`[reporting] ${line}\n`);

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const ROWS = Number(option('rows') ?? 10_000_000);
const CHUNK = 250_000;
const KEYS = 50;
const HOSTS = 2_000;
const DAYS = 90;

/**
 * One chunk of history rows, `$1` to `$2` of `$3` in creation order, over the last DAYS days. Keys
 * and hosts are skewed (key-01 and host-0000 carry the most jobs); 20 % sync; 90 % completed, 6 %
 * failed, 1.5 % timed out, 2.5 % cancelled — but host-0007 is blocked on 45 % of its jobs, and
 * host-0015 has timed out (30 s) on 35 % of its jobs in the last 7 days: trouble for the example
 * questions of docs/reporting.md to find. The random draws are columns of the row source: in an
 * uncorrelated LATERAL, Postgres would draw them once for the whole statement.
 */
const INSERT_CHUNK = `
  insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds,
         status, target_status_code, error_code, error_message, attempts, charged, result_bytes,
         elapsed_ms, created_at, started_at, finished_at, updated_at, result_expires_at)
  select gen_random_uuid(), k.id, case when r.kind < 0.2 then 'sync' else 'async' end,
         'https://' || h.host || '/page/' || r.g, h.host, 'GET', 'markdown', 30,
         s.status,
         case s.status when 'completed' then 200 when 'failed' then (array[403, 404, 500, 503])[1 + (r.g % 4)] end,
         s.error_code, case when s.error_code is not null then 'seeded failure' end,
         case when s.status = 'cancelled' then 0 else 1 + (r.retry < 0.03)::int end,
         case when s.status = 'completed' then 0.0035 else 0 end,
         case when s.status = 'completed' then 2000 + (r.size * 200000)::int end,
         case when s.status <> 'cancelled' then s.run_ms::int end,
         t.created, case when s.status <> 'cancelled' then t.created + t.queue_ms * interval '1 ms' end,
         t.created + (t.queue_ms + coalesce(s.run_ms, 0)) * interval '1 ms',
         t.created + (t.queue_ms + coalesce(s.run_ms, 0)) * interval '1 ms',
         case when s.status = 'completed' then t.created + interval '1 day' end
    from (select g, random() as kind, random() as retry, random() as size, random() as st,
                 floor(power(random(), 3) * ${KEYS})::int as key, floor(power(random(), 4) * ${HOSTS})::int as host,
                 150 + power(random(), 3) * 5000 as run_ms
            from generate_series($1::bigint, $2::bigint) g) r
    cross join lateral (
      select now() - ${DAYS} * interval '1 day' + (r.g::float8 / $3) * ${DAYS} * interval '1 day' as created,
             5 + random() * 400 as queue_ms) t
    cross join lateral (
      select case when r.host = 7 and r.st < 0.45 then 'failed'
                  when r.host = 15 and t.created > now() - interval '7 days' and r.st < 0.35 then 'timed_out'
                  when r.st < 0.90 then 'completed' when r.st < 0.96 then 'failed'
                  when r.st < 0.975 then 'timed_out' else 'cancelled' end as status,
             case when r.host = 7 and r.st < 0.45 then 'TARGET_BLOCKED'
                  when r.host = 15 and t.created > now() - interval '7 days' and r.st < 0.35 then 'TARGET_TIMEOUT'
                  when r.st < 0.90 then null
                  when r.st < 0.96 then (array['TARGET_UNREACHABLE', 'TARGET_PROTOCOL_ERROR', 'TARGET_TLS_ERROR',
                                               'TARGET_BLOCKED'])[1 + (r.g % 4)]
                  when r.st < 0.975 then 'TARGET_TIMEOUT' else 'CANCELLED' end as error_code,
             case when r.st >= 0.975 and not (r.host = 7 and r.st < 0.45) then null
                  when (r.host = 15 and t.created > now() - interval '7 days' and r.st < 0.35)
                    or (r.st >= 0.96 and r.st < 0.975) then 30000
                  else r.run_ms end as run_ms) s
    join seed_keys k on k.n = r.key
    join seed_hosts h on h.n = r.host`;

async function seed(url: string): Promise<void> {
  const store = openStore(url, { max: 1 });
  try {
    log('migrating (a new migration and its deferred steps run over the existing history too)');
    const began = performance.now();
    const applied = await migrateToLatest(store.db);
    if (applied.length > 0)
      log(`applied ${applied.join(', ')} in ${Math.round((performance.now() - began) / 1000)} s`);
  } finally {
    await store.close();
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>('select count(*) as n from omniscrape.scrape_jobs');
    if (Number(rows[0]!.n) > 0) {
      log(`history already holds ${rows[0]!.n} rows: not filling`);
      if ((await rollUpSeededDays(url)) > 0) await client.query('vacuum analyze');
      return;
    }
    await client.query(`create temp table seed_keys (n int primary key, id uuid)`);
    for (let n = 0; n < KEYS; n++) {
      const name = `key-${String(n + 1).padStart(2, '0')}`;
      const key = await client.query<{ id: string }>(
        `insert into omniscrape.api_keys (name, key_hash, key_prefix) values ($1, md5($1), 'osk_seed')
         on conflict (name) do update set name = excluded.name returning id`,
        [name],
      );
      await client.query('insert into seed_keys values ($1, $2)', [n, key.rows[0]!.id]);
    }
    await client.query(`create temp table seed_hosts as
      select n, 'host-' || lpad(n::text, 4, '0') || '.example' as host from generate_series(0, ${HOSTS - 1}) n`);
    const began = performance.now();
    for (let from = 1; from <= ROWS; from += CHUNK) {
      const to = Math.min(ROWS, from + CHUNK - 1);
      await client.query(INSERT_CHUNK, [from, to, ROWS]);
      const rate = to / ((performance.now() - began) / 1000);
      log(
        `${to.toLocaleString('en')} / ${ROWS.toLocaleString('en')} rows (${Math.round(rate).toLocaleString('en')} rows/s, ETA ${Math.round((ROWS - to) / rate)} s)`,
      );
    }
    const spread = await client.query<{ keys: string; hosts: string; statuses: string }>(
      `select count(distinct api_key_id) as keys, count(distinct host) as hosts, count(distinct status) as statuses
         from omniscrape.scrape_jobs where created_at > now() - interval '1 day'`,
    );
    const last = spread.rows[0]!;
    log(`the last day holds ${last.keys} keys, ${last.hosts} hosts and ${last.statuses} statuses`);
    log('rolling up finished days, then vacuum analyze');
    log(`${await rollUpSeededDays(url)} days rolled up`);
    await client.query('vacuum analyze');
  } finally {
    await client.end();
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

interface Timing {
  name: string;
  sql: string;
  median_ms: number;
  runs_ms: number[];
  plan: string;
}

async function timeQueries(url: string): Promise<Timing[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const timings: Timing[] = [];
  try {
    for (const q of REPORTING_QUERIES) {
      const runs: number[] = [];
      let plan = '';
      for (let i = 0; i < 6; i++) {
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(
          `explain (analyze, buffers) ${q.sql}`,
          q.params,
        );
        plan = rows.map((r) => r['QUERY PLAN']).join('\n');
        const execution = /Execution Time: ([\d.]+) ms/.exec(plan);
        const planning = /Planning Time: ([\d.]+) ms/.exec(plan);
        if (i > 0) runs.push(Number(execution?.[1] ?? NaN) + Number(planning?.[1] ?? 0));
      }
      timings.push({ name: q.name, sql: q.sql, median_ms: median(runs), runs_ms: runs, plan });
      log(`${q.name}: ${median(runs).toFixed(1)} ms (planning + execution, median of ${runs.length})`);
    }
  } finally {
    await client.end();
  }
  return timings;
}

/** Each example question's SQL, its answer as a table, and how long it took (one run, warm). */
async function answerQuestions(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let out = '';
  try {
    for (const q of EXAMPLE_QUESTIONS) {
      await client.query(q.sql);
      const began = performance.now();
      const result = await client.query<Record<string, unknown>>(q.sql);
      const ms = performance.now() - began;
      const table = new Table({ head: result.fields.map((f) => f.name), style: { head: [], border: [] } });
      const cell = (value: unknown) =>
        value instanceof Date
          ? value.toISOString().slice(0, 10)
          : value == null
            ? ''
            : (value as string | number).toString();
      for (const row of result.rows) table.push(result.fields.map((f) => cell(row[f.name])));
      out += `\n${q.question}\n\n${q.sql};\n\n${table.toString()}\n(${result.rowCount} rows, ${ms.toFixed(1)} ms)\n`;
    }
  } finally {
    await client.end();
  }
  return out;
}

async function main(): Promise<void> {
  const keep = option('data');
  const dir = keep ? path.resolve(keep) : fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-reporting-'));
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755);
  const postgres = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    persistent: Boolean(keep),
  });
  try {
    await seed(postgres.url);
    const timings = await timeQueries(postgres.url);
    const dashboard = await timeDashboardQueries(postgres.url, log);
    const answers = await answerQuestions(postgres.url);
    const retentionDays = option('retention-days');
    if (retentionDays) log(`running the retention with OMNISCRAPE_HISTORY_DAYS=${retentionDays}`);
    const retention = retentionDays ? await measureRetention(postgres.url, Number(retentionDays)) : undefined;
    const out = path.resolve(__dirname, '../../bench/results/reporting.json');
    fs.writeFileSync(
      out,
      `${JSON.stringify({ rows: ROWS, cores: os.cpus().length, measured_at: new Date().toISOString(), timings, dashboard_ms: dashboard, retention }, null, 2)}\n`,
    );
    process.stdout.write(
      `\nreporting views over ${ROWS.toLocaleString('en')} history rows (${os.cpus().length} cores)\n`,
    );
    for (const t of timings) process.stdout.write(`  ${t.median_ms.toFixed(1).padStart(8)} ms  ${t.name}\n`);
    process.stdout.write(`\nGET /dashboard/data and its statements, ms (median of 5)\n`);
    for (const [range, parts] of Object.entries(dashboard))
      process.stdout.write(
        `  ${range.padEnd(4)} ${Object.entries(parts)
          .map(([what, ms]) => `${what} ${ms.toFixed(0)}`)
          .join(', ')}\n`,
      );
    process.stdout.write(`\nThe example questions of docs/reporting.md\n${answers}`);
    if (retention) process.stdout.write(`\nThe retention, once\n${JSON.stringify(retention, null, 2)}\n`);
    log(`written ${path.relative(process.cwd(), out)} (with each query's plan)`);
  } finally {
    await postgres.stop();
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
