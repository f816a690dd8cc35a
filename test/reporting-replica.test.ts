import { sql, type Kysely } from 'kysely';
import { readDailyUsage } from '../src/db/reporting/reports';
import { runCli } from './helpers/cli';
import { startPackagedPostgres, type PackagedPostgres } from './helpers/packaged-postgres';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, waitForJob, type TestService } from './helpers/service';
import { allowReplication, startStreamingReplica, type StreamingReplica } from './helpers/streaming-replica';

// OMNISCRAPE_REPORTING_DATABASE_URL against a real streaming replica (pg_basebackup -R of the
// primary, Debian's Postgres for both): reporting reads go to the replica and see what it has
// replayed; the API's job reads stay on the primary and see every commit at once.
let primary: PackagedPostgres;
let replica: StreamingReplica;
let service: TestService;
let target: TargetServer;

beforeAll(async () => {
  target = await startTargetServer();
  primary = await startPackagedPostgres({ wal_level: 'replica', max_wal_senders: '4' });
  await allowReplication(primary.url);
  replica = await startStreamingReplica(primary.url);
  service = await startTestService({
    databaseUrl: primary.url,
    env: { OMNISCRAPE_REPORTING_DATABASE_URL: replica.url },
  });
  await replica.caughtUp();
}, 180_000);
afterAll(async () => {
  await service?.stop();
  await replica?.stop();
  await primary?.stop();
  await target?.close();
});

/** Which server a handle's connections reach: its port, and whether it is a standby. */
async function serverOf<D>(db: Kysely<D>) {
  const { rows } = await sql<{
    port: number;
    standby: boolean;
  }>`select inet_server_port() as port, pg_is_in_recovery() as standby`.execute(db);
  return rows[0];
}

const usageOfToday = (db: Parameters<typeof readDailyUsage>[0]) =>
  readDailyUsage(db, { since: new Date(Date.now() - 60_000) });

/** The daily usage and host health as SQL over the views on the primary gives them. */
async function viewsOnPrimary() {
  const usage = await service.query(
    `select day::text as day, api_key_name, jobs::int, completed::int, failed::int, timed_out::int,
            cancelled::int, charged::float8 as charged, p50_run_ms, p95_run_ms
       from omniscrape_reporting.daily_usage
      where day >= ((now() - interval '7 days') at time zone 'UTC')::date order by day, api_key_name`,
  );
  const hosts = await service.query(
    `select host, jobs::int, success_rate, p95_run_ms, top_error_code, last_failure_at, rendered::int
       from omniscrape_reporting.host_health order by jobs desc, host`,
  );
  return {
    daily_usage: usage,
    host_health: hosts.map((h) => ({ ...h, last_failure_at: h.last_failure_at?.toISOString() ?? null })),
  };
}

describe('reporting off a streaming replica', () => {
  test('the replica is a hot standby streaming from the primary', async () => {
    const replication = await service.query(`select state from pg_stat_replication`);
    expect(replication).toEqual([{ state: 'streaming' }]);
    expect(await serverOf(service.running.context.reporting)).toEqual({ port: replica.port, standby: true });
  });

  test("the service's reporting reads go to the replica, its store (job reads) to the primary", async () => {
    const { context } = service.running;
    const primaryPort = Number(new URL(primary.url).port);
    expect(await serverOf(context.store.db)).toEqual({ port: primaryPort, standby: false });
    expect(await serverOf(context.reporting)).toEqual({ port: replica.port, standby: true });
    // Each server's own view of who reads it: the reporting pool is a client of the replica only.
    const reader = await sql<{
      application_name: string;
    }>`select application_name from pg_stat_activity where pid = pg_backend_pid()`.execute(context.reporting);
    expect(reader.rows).toEqual([{ application_name: 'omniscrape-reporting' }]);
    expect(
      await service.query(
        `select count(*)::int as n from pg_stat_activity where application_name = 'omniscrape-reporting'`,
      ),
    ).toEqual([{ n: 0 }]);
  });

  test('a job committed on the primary is read by the API at once, and reported only once the replica replays it', async () => {
    const { reporting } = service.running.context;
    await replica.pauseReplay();
    try {
      const submitted = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain` });
      expect(submitted.status).toBe(202);
      // Job reads see every commit: the job is found and followed to its end while the replica is behind.
      expect((await waitForJob(service, submitted.body.job_id)).status).toBe('completed');
      const [onPrimary] = await service.query(`select count(*)::int as n from omniscrape.scrape_jobs`);
      expect(onPrimary.n).toBe(1);
      // The reports lag: neither the service's reporting reads nor `omniscrape report` see it yet.
      expect(await usageOfToday(reporting)).toEqual([]);
      const behind = await runCli(['report', '--format', 'json'], {
        DATABASE_URL: primary.url,
        OMNISCRAPE_REPORTING_DATABASE_URL: replica.url,
      });
      expect(behind.code).toBe(0);
      expect(JSON.parse(behind.stdout)).toMatchObject({ daily_usage: [], host_health: [] });
    } finally {
      await replica.resumeReplay();
    }
    await replica.caughtUp();

    expect((await usageOfToday(reporting)).map((r) => [r.api_key_name, r.jobs, r.completed])).toEqual([
      ['alpha', 1, 1],
    ]);
    const replayed = await runCli(['report', '--format', 'json'], {
      DATABASE_URL: primary.url,
      OMNISCRAPE_REPORTING_DATABASE_URL: replica.url,
    });
    expect(replayed.code).toBe(0);
    const printed = JSON.parse(replayed.stdout);
    expect({ daily_usage: printed.daily_usage, host_health: printed.host_health }).toEqual(
      await viewsOnPrimary(),
    );
    expect(printed.daily_usage).toHaveLength(1);
    // How far behind the figures are, as the docs tell operators to check it.
    const lag = await sql<{
      lag_ms: number | null;
    }>`select extract(epoch from now() - pg_last_xact_replay_timestamp()) * 1000 as lag_ms`.execute(
      reporting,
    );
    expect(lag.rows[0]!.lag_ms).not.toBeNull();
  }, 120_000);
});
