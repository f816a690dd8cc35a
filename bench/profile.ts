/**
 * `npm run bench:profile -- [e2e|e2e-wait|loaded|submit|sync|idle|rss|bullmq-e2e] [jobs]` — where the time goes in one benchmark
 * scenario: CPU seconds spent by the gateway, by Postgres (all its processes) and by the load
 * generator, the gateway's hottest functions from a V8 CPU profile (`--cpu-prof`), and what the
 * gateway's Postgres sessions were doing (pg_stat_activity sampled every 10 ms: statement and wait
 * event), and the statements by total time (pg_stat_statements, planning included). The profile file is kept under bench/results/profiles/ (git-ignored) for Chrome DevTools.
 * `bullmq-e2e` profiles the baseline instead (bench/bullmq-gateway.ts on redis-server), for the same
 * figures per job side by side.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../src/postgres-server/embedded-postgres';
import { freePort } from '../test/helpers/free-port';
import { apiClient, endToEnd, endToEndWithWait, idleLatency, percentile, requestsPerSecond } from './clients';
import { processCpuSeconds, processCpuSplit as cpuSplit } from './process-tree';
import { startBullmqGateway, startGateway, startRedis, startWorker } from './processes';
import { startBenchTarget } from './target-server';
import { loadHistory } from './scenarios';
import { postgresCpu, processCpu } from './cpu-counters';

const scenario = process.argv[2] ?? 'e2e';
const jobs = Number(process.argv[3] ?? 5_000);
const BENCH_KEY = 'bench-key-0000000001';
const log = (line: string) => process.stderr.write(`[profile] ${line}\n`);
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

/** Self time by function, and time by package (node_modules/<pkg>, node: internals, our own code). */
function summariseProfile(file: string): void {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
  const total = profile.samples.length;
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (!hits) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url.replace(/^file:\/\//, '').replace(/.*node_modules\//, '');
    const fn = `${functionName || '(anonymous)'} ${where ? `${path.basename(where)}:${lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + hits);
    const pkg = url.includes('node_modules/')
      ? url
          .split('node_modules/')
          .pop()!
          .split('/')
          .slice(0, url.split('node_modules/').pop()!.startsWith('@') ? 2 : 1)
          .join('/')
      : url.startsWith('node:')
        ? 'node internals'
        : url
          ? `omniscrape ${path
              .relative(path.resolve(__dirname, '../..'), url.replace(/^file:\/\//, ''))
              .split('/')
              .slice(0, 3)
              .join('/')}`
          : `(${functionName})`;
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + hits);
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  process.stdout.write(`\ngateway CPU by package (share of samples):\n${top(byPackage, 20)}\n`);
  process.stdout.write(`\ngateway hottest functions (self time):\n${top(byFunction, 30)}\n`);
}

/** Samples what the gateway's Postgres sessions are doing, every 10 ms, while `during` runs. */
async function sampleActivity<T>(databaseUrl: string, during: Promise<T>): Promise<[T, Map<string, number>]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const seen = new Map<string, number>();
  let running = true;
  const sampler = (async () => {
    while (running) {
      const { rows } = await client.query(
        `select coalesce(wait_event_type || ':' || wait_event, 'CPU') as wait, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) as query
           from pg_stat_activity where state = 'active' and pid <> pg_backend_pid() and backend_type = 'client backend'`,
      );
      for (const r of rows)
        seen.set(`${r.wait.padEnd(28)} ${r.query}`, (seen.get(`${r.wait.padEnd(28)} ${r.query}`) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  try {
    return [await during, seen];
  } finally {
    running = false;
    await sampler;
    await client.end();
  }
}

/** Idle latency (one job at a time), and where it goes, from the history row's timestamps. */
async function idleStages(
  client: ReturnType<typeof apiClient>,
  page: string,
  databaseUrl: string,
): Promise<string> {
  const latencies = await idleLatency(client, page, 200);
  const [stages] = await statements(
    databaseUrl,
    `select round(percentile_cont(0.5) within group (order by extract(epoch from started_at - created_at) * 1000)::numeric, 2) as submit_to_claim,
            round(percentile_cont(0.5) within group (order by extract(epoch from finished_at - started_at) * 1000)::numeric, 2) as claim_to_settle
       from (select * from omniscrape.scrape_jobs where kind = 'async' order by created_at desc limit 200) recent`,
  );
  const p = (q: number) => percentile(latencies, q).toFixed(1);
  return `idle latency p50/p95/p99 ${p(50)}/${p(95)}/${p(99)} ms; medians: submission checked (created_at, before its transaction) -> claim tx began ${stages.submit_to_claim} ms, claim tx began -> settle tx began ${stages.claim_to_settle} ms`;
}

async function statements(databaseUrl: string, text: string): Promise<any[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

/** The newest CPU profile written to `profiles`, summarised. */
function summariseNewestProfile(profiles: string): void {
  const newest = fs
    .readdirSync(profiles)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(profiles, f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
  if (newest) {
    summariseProfile(newest);
    log(`profile: ${path.relative(process.cwd(), newest)}`);
  }
}

/** The BullMQ-on-Redis baseline gateway, the same e2e clients: its CPU per job, and its profile. */
async function profileBullmq(profiles: string, nodeFlags: string[]): Promise<void> {
  const redis = await startRedis();
  const target = await startBenchTarget();
  const page = `${target.origin}/2kb`;
  const gateway = await startBullmqGateway(
    { redisPort: redis.port },
    { WORKER_CONCURRENCY: '50' },
    nodeFlags,
  );
  const client = apiClient(gateway.baseUrl, BENCH_KEY);
  try {
    await endToEnd(client, page, 200); // warm-up
    const gwBefore = cpuSplit(gateway.process.pid!);
    const redisBefore = processCpuSeconds(redis.pid);
    const started = performance.now();
    log(`bullmq-e2e, ${jobs} jobs`);
    const r = await endToEnd(client, page, jobs);
    const wall = (performance.now() - started) / 1000;
    const gw = cpuSplit(gateway.process.pid!);
    const user = gw.user - gwBefore.user;
    const system = gw.system - gwBefore.system;
    const redisCpu = processCpuSeconds(redis.pid) - redisBefore;
    process.stdout.write(
      `\n${Math.round(r.jobsPerSecond)} jobs/s end to end (BullMQ on Redis), ${(r.pollLatenciesMs.length / jobs).toFixed(1)} polls per job (${wall.toFixed(1)} s wall)\n`,
    );
    process.stdout.write(
      `CPU seconds: gateway ${(user + system).toFixed(1)} (user ${user.toFixed(1)}, system ${system.toFixed(1)}), redis ${redisCpu.toFixed(1)}\n`,
    );
    process.stdout.write(
      `CPU ms per job: gateway ${((1000 * (user + system)) / jobs).toFixed(2)}, redis ${((1000 * redisCpu) / jobs).toFixed(2)}\n`,
    );
  } finally {
    await client.close();
    await gateway.stop();
    await target.close();
    await redis.stop();
  }
  summariseNewestProfile(profiles);
}

async function main(): Promise<void> {
  const profiles = path.resolve(__dirname, '../../bench/results/profiles');
  fs.mkdirSync(profiles, { recursive: true });
  const nodeFlags = [
    ...(process.env.PROFILE_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
    ...(process.env.PROFILE_NO_CPU_PROF ? [] : ['--cpu-prof', '--cpu-prof-dir', profiles]),
  ];
  if (scenario === 'bullmq-e2e') return profileBullmq(profiles, nodeFlags);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-profile-'));
  fs.chmodSync(dir, 0o755);
  // PROFILE_EXPLAIN_MS=n: plans of statements slower than n ms go to bench/results/profiles/postgres.log
  const explainMs = process.env.PROFILE_EXPLAIN_MS;
  const autoExplain: Record<string, string> = explainMs
    ? {
        'auto_explain.log_min_duration': `${explainMs}ms`,
        'auto_explain.log_analyze': 'on',
        'auto_explain.log_buffers': 'on',
      }
    : {};
  // PROFILE_LOG_STATEMENTS=1: every statement with its duration, to the same log
  if (process.env.PROFILE_LOG_STATEMENTS)
    Object.assign(autoExplain, { log_min_duration_statement: '0', log_line_prefix: '%m [%p] ' });
  const pgLog = fs.createWriteStream(path.join(profiles, 'postgres.log'));
  const postgres = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    persistent: false,
    settings: {
      max_connections: '300',
      shared_preload_libraries: 'pg_stat_statements,auto_explain',
      'pg_stat_statements.track_planning': 'on',
      ...autoExplain,
    },
    onLog: (line) => pgLog.write(`${line}\n`),
  });
  await statements(postgres.url, 'create extension if not exists pg_stat_statements');
  await statements(postgres.url, 'create extension if not exists pg_walinspect');
  const target = await startBenchTarget();
  const page = `${target.origin}/2kb`;
  const gatewayEnv = {
    OMNISCRAPE_API_KEYS: `bench:${BENCH_KEY}`,
    OMNISCRAPE_WORKER_CONCURRENCY: scenario === 'rss' ? '500' : '50',
    OMNISCRAPE_DEFAULT_CONCURRENCY: '100000',
    OMNISCRAPE_DEFAULT_MAX_QUEUED: '1000000',
    // Stops between scenarios hand in-flight jobs back quickly (the slow backlog job is always in flight).
    OMNISCRAPE_SHUTDOWN_GRACE_SECONDS: '5',
    ...(process.env.OMNISCRAPE_WORKER_BODY_BUDGET_MB
      ? { OMNISCRAPE_WORKER_BODY_BUDGET_MB: process.env.OMNISCRAPE_WORKER_BODY_BUDGET_MB }
      : {}),
  };
  const gateway = await startGateway(
    postgres.url,
    gatewayEnv,
    nodeFlags,
    scenario === 'rss' ? 'api' : 'serve',
  );
  // rss: the API in its own process, so the worker's memory is measured alone.
  const worker =
    scenario === 'rss' ? await startWorker(postgres.url, { ...gatewayEnv }, nodeFlags) : undefined;
  const client = apiClient(gateway.baseUrl, BENCH_KEY);
  const waitClient = scenario === 'e2e-wait' ? apiClient(gateway.baseUrl, BENCH_KEY, 256) : undefined;
  try {
    if (scenario === 'loaded') {
      log('loading 200,000 finished jobs and 100,000 queued ones of another tenant');
      await loadHistory(postgres.url, 200_000, 100_000, `${target.origin}/2kb?delay=600000`);
    }
    const postmaster = Number(fs.readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    await endToEnd(client, page, 200); // warm-up
    const postgresCpuSeconds = postgresCpu(postmaster);
    const gatewayCpuSeconds = processCpu(gateway.process.pid!);
    const pgBefore = postgresCpuSeconds();
    const gwBefore = gatewayCpuSeconds();
    const gwSplitBefore = cpuSplit(gateway.process.pid!);
    const selfBefore = process.cpuUsage();
    await statements(postgres.url, 'select pg_stat_statements_reset()');
    const [{ lsn: walBefore }] = await statements(postgres.url, 'select pg_current_wal_lsn() as lsn');
    const started = performance.now();
    log(`${scenario}, ${jobs} jobs`);
    // What the CPU is divided by: the jobs the scenario ran (submit and sync: the requests answered in their 10 s).
    let counted = scenario === 'idle' ? 200 : scenario === 'rss' ? 500 : jobs;
    const work =
      scenario === 'submit'
        ? requestsPerSecond(`${gateway.baseUrl}/v1/scrape/async`, { url: page }, BENCH_KEY, 10).then(
            (r) => ((counted = Math.round(r * 10)), `${Math.round(r)} submits/s`),
          )
        : scenario === 'sync'
          ? requestsPerSecond(`${gateway.baseUrl}/v1/scrape`, { url: page }, BENCH_KEY, 10).then(
              (r) => ((counted = Math.round(r * 10)), `${Math.round(r)} sync scrapes/s`),
            )
          : scenario === 'idle'
            ? idleStages(client, page, postgres.url)
            : scenario === 'rss'
              ? endToEnd(client, `${target.origin}/1mb?delay=2000`, 500).then(
                  (r) =>
                    `${Math.round(r.jobsPerSecond)} jobs/s with 500 pages of ~1 MB, worker peak RSS ${Math.round(worker!.peakRssMb())} MB`,
                )
              : scenario === 'e2e-wait'
                ? endToEndWithWait(client, waitClient!, page, jobs).then(
                    (r) => `${Math.round(r)} jobs/s end to end, clients waiting with ?wait=`,
                  )
                : endToEnd(client, page, jobs).then(
                    (r) =>
                      `${Math.round(r.jobsPerSecond)} jobs/s end to end, ${(r.pollLatenciesMs.length / jobs).toFixed(1)} polls per job`,
                  );
    const [figure, activity] = await sampleActivity(postgres.url, work);
    const wall = (performance.now() - started) / 1000;
    const pgCpu = postgresCpuSeconds() - pgBefore;
    const gwCpu = gatewayCpuSeconds() - gwBefore;
    const [{ bytes: walBytes, lsn: walAfter }] = await statements(
      postgres.url,
      `select pg_wal_lsn_diff(pg_current_wal_lsn(), '${walBefore}')::bigint as bytes, pg_current_wal_lsn() as lsn`,
    );
    const gwSplit = cpuSplit(gateway.process.pid!);
    const self = process.cpuUsage(selfBefore);
    const benchCpu = (self.user + self.system) / 1e6;
    process.stdout.write(`\n${figure} (${wall.toFixed(1)} s wall, ${os.cpus().length} cores)\n`);
    process.stdout.write(
      `CPU seconds: gateway ${gwCpu.toFixed(1)}, postgres ${pgCpu.toFixed(1)}, load generator + target ${benchCpu.toFixed(1)}, idle ${(wall * os.cpus().length - gwCpu - pgCpu - benchCpu).toFixed(1)}\n`,
    );
    process.stdout.write(
      `CPU ms per job: gateway ${((1000 * gwCpu) / counted).toFixed(2)} (user ${((1000 * (gwSplit.user - gwSplitBefore.user)) / counted).toFixed(2)}, system ${((1000 * (gwSplit.system - gwSplitBefore.system)) / counted).toFixed(2)}), postgres ${((1000 * pgCpu) / counted).toFixed(2)}, wal_bytes ${Math.round(Number(walBytes) / counted)}\n`,
    );
    const samples = [...activity.values()].reduce((a, b) => a + b, 0);
    process.stdout.write(`\npostgres sessions, sampled every 10 ms (${samples} active samples):\n`);
    for (const [what, n] of [...activity.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15))
      process.stdout.write(`  ${String(n).padStart(6)}  ${what}\n`);
    const top = await statements(
      postgres.url,
      `select calls, round(total_exec_time)::int as exec_ms, round(total_plan_time)::int as plan_ms, round((total_exec_time / greatest(calls, 1))::numeric, 3) as mean_ms,
              rows, round(wal_bytes / ${counted}) as wal_per_job, left(regexp_replace(query, '\\s+', ' ', 'g'), 80) as query
         from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())
        order by total_exec_time + total_plan_time desc limit 25`,
    );
    // Round trips per job: every statement the service sent (BEGIN and COMMIT included), not this
    // script's sampling of pg_stat_activity.
    const [sent] = await statements(
      postgres.url,
      `select coalesce(sum(calls), 0)::int8 as calls from pg_stat_statements
        where dbid = (select oid from pg_database where datname = current_database())
          and query not like '%pg_stat_activity%' and query not like '%pg_stat_statements_reset%'`,
    );
    process.stdout.write(`\nstatements per job: ${(Number(sent.calls) / counted).toFixed(2)}\n`);
    process.stdout.write(
      `\nstatements by time (pg_stat_statements): calls, exec ms, plan ms, mean exec ms, rows, WAL bytes per job\n`,
    );
    for (const r of top)
      process.stdout.write(
        `  ${String(r.calls).padStart(7)} ${String(r.exec_ms).padStart(6)} ${String(r.plan_ms).padStart(6)} ${String(r.mean_ms).padStart(8)} ${String(r.rows).padStart(8)} ${String(r.wal_per_job).padStart(6)}  ${r.query}\n`,
      );
    // What the WAL of the scenario is made of: records and full-page images by kind (pg_walinspect).
    const wal = await statements(
      postgres.url,
      `select "resource_manager/record_type" as kind, count, round(record_size::numeric / ${jobs}) as record_per_job,
              round(fpi_size::numeric / ${jobs}) as fpi_per_job, round(combined_size::numeric / ${jobs}) as per_job
         from pg_get_wal_stats('${walBefore}', '${walAfter}', true) where count > 0
        order by combined_size desc limit 15`,
    );
    process.stdout.write(
      `\nWAL by record kind (pg_walinspect): records, record bytes per job, page images per job, total per job\n`,
    );
    for (const r of wal)
      process.stdout.write(
        `  ${String(r.count).padStart(8)} ${String(r.record_per_job).padStart(6)} ${String(r.fpi_per_job).padStart(6)} ${String(r.per_job).padStart(6)}  ${r.kind}\n`,
      );
  } finally {
    await client.close();
    await waitClient?.close();
    await gateway.stop();
    await worker?.stop();
    await target.close();
    await postgres.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  summariseNewestProfile(profiles);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`[profile] failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
