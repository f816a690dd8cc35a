import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { API_LISTENER } from '../src/service';
import { insertApiKey } from '../src/db/api-keys';
import { detectPgBouncer, pgBouncerProblems } from '../src/admin/pgbouncer-detection';
import { namedStatement, PreparingClient } from '../src/db/prepared-statements';
import { runCli } from './helpers/cli';
import { createTestDatabase, withClient } from './helpers/database';
import { freePort } from './helpers/free-port';
import { submitJobs, waitUntilAllFinished } from './helpers/load';
import { startPgBouncer, type PgBouncer } from './helpers/pgbouncer';
import { startTestService, waitForJob, type TestService } from './helpers/service';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { waitFor } from './helpers/wait';

// The service behind Debian's PgBouncer (1.18) in transaction mode, as a team's Postgres often
// sits: DATABASE_URL is PgBouncer's, OMNISCRAPE_DIRECT_DATABASE_URL Postgres's own, prepared
// statements off, PgBouncer set up as docs/production-postgres.md's example.

/**
 * The [pgbouncer] section of the example pgbouncer.ini in docs/production-postgres.md, but for the lines naming that
 * machine's addresses and files (the test's PgBouncer listens and keeps its files elsewhere).
 */
function documentedPgBouncerSettings(): Record<string, string> {
  const page = fs.readFileSync(path.join(__dirname, '..', 'docs', 'production-postgres.md'), 'utf8');
  const ini = /```ini\n([\s\S]*?)```/.exec(page.slice(page.indexOf('## PgBouncer')))?.[1] ?? '';
  const local = new Set(['listen_addr', 'listen_port', 'auth_file', 'logfile', 'pidfile', 'unix_socket_dir']);
  const entries = ini
    .slice(ini.indexOf('[pgbouncer]'))
    .split('\n')
    .map((line) => /^(\w+)\s*=\s*(.*)$/.exec(line.trim()))
    .filter((m): m is RegExpExecArray => m !== null && !local.has(m[1]!));
  return Object.fromEntries(entries.map((m) => [m[1]!, m[2]!]));
}

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let bouncer: PgBouncer;
let target: TargetServer;
let service: TestService;
/** Every Parse message this process sent while the service ran (name '': unnamed). */
const parsed: { name: string; text: string }[] = [];
/** pg's own Connection.parse, called by the recording one below (always with `.apply(this, …)`). */
// eslint-disable-next-line @typescript-eslint/unbound-method
const parse = pg.Connection.prototype.parse;

beforeAll(async () => {
  pg.Connection.prototype.parse = function (this: pg.Connection, ...args: Parameters<typeof parse>) {
    parsed.push({ name: args[0].name ?? '', text: args[0].text });
    return parse.apply(this, args);
  };
  target = await startTargetServer({ '/n': (_req, res) => void res.end('ok') });
  database = await createTestDatabase();
  const settings = documentedPgBouncerSettings();
  expect(settings).toMatchObject({ pool_mode: 'transaction', auth_type: 'scram-sha-256' });
  bouncer = await startPgBouncer(database.url, { settings });
  service = await startTestService({
    databaseUrl: bouncer.url(database.url),
    env: { OMNISCRAPE_DIRECT_DATABASE_URL: database.url, OMNISCRAPE_PREPARED_STATEMENTS: 'false' },
  });
});
afterAll(async () => {
  pg.Connection.prototype.parse = parse;
  await service?.stop();
  await bouncer?.stop();
  await database?.drop();
  await target?.close();
});

/** The application names of the service's connections that reach Postgres directly, not through PgBouncer. */
async function directConnections(): Promise<string[]> {
  const viaBouncer = await withClient(bouncer.adminUrl, async (admin) =>
    (await admin.query<{ local_port: number }>('SHOW SERVERS')).rows.map((r) => r.local_port),
  );
  return withClient(database.url, async (client) => {
    const { rows } = await client.query<{ application_name: string }>(
      `select application_name from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid() and not client_port = any($1::int[])
        order by application_name`,
      [viaBouncer],
    );
    return rows.map((r) => r.application_name);
  });
}

const submit = async (url: string, key?: string) => {
  const res = await service.call('POST', '/v1/scrape/async', { url }, key);
  expect(res.status).toBe(202);
  return res.body.job_id as string;
};

describe('through PgBouncer in transaction mode, prepared statements off', () => {
  test('only the LISTEN connections (the API, the worker, pg-boss) go to Postgres directly', async () => {
    let seen: string[] = [];
    await waitFor(async () => (seen = await directConnections()).length === 3, {
      what: () => `three direct connections; seen ${JSON.stringify(seen)}`,
    });
    expect(seen).toEqual([API_LISTENER, 'omniscrape-listener', 'omniscrape-worker']);
  });

  test('a job is submitted, claimed, completed and polled', async () => {
    const jobId = await submit(`${target.origin}/page`);
    const done = await waitForJob(service, jobId);
    expect(done).toMatchObject({ job_id: jobId, status: 'completed' });
    expect(done.result.data.content).toContain('Sample page');
  });

  test('?wait= is answered when the job completes: its notice reaches the direct LISTEN connection', async () => {
    const name = `wait-${randomUUID()}`;
    const jobId = await submit(`${target.origin}/held?name=${name}`);
    await waitFor(() => target.held(name) === 1, { what: 'the job to reach the target', timeoutMs: 30_000 });
    const began = Date.now();
    const answer = service.call('GET', `/v1/jobs/${jobId}?wait=60`);
    await waitFor(() => service.running.context.jobWatchers.size > 0, { what: 'the request to wait' });
    target.release(name);
    expect((await answer).body.data).toMatchObject({ job_id: jobId, status: 'completed' });
    // Without the notice the wait would run its 60 s out (as job-wait.test.ts bounds it).
    expect(Date.now() - began).toBeLessThan(30_000);
  });

  test('a queued job is cancelled', async () => {
    // A key with one slot: its second job stays queued behind the first, held at the target.
    const key = `test-key-pgbouncer-${randomUUID()}`;
    await insertApiKey(service.running.context.store.db, `pgbouncer-${randomUUID()}`, key, {
      concurrency: 1,
    });
    const name = `cancel-${randomUUID()}`;
    const running = await submit(`${target.origin}/held?name=${name}`, key);
    await waitFor(() => target.held(name) === 1, { what: 'the first job to reach the target' });
    const queued = await submit(`${target.origin}/page?queued=1`, key);
    const cancelled = await service.call('DELETE', `/v1/jobs/${queued}`, undefined, key);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.data).toMatchObject({ job_id: queued, status: 'cancelled' });
    target.release(name);
    expect(await waitForJob(service, running, undefined, undefined, key)).toMatchObject({
      status: 'completed',
    });
  });

  test('a batch completes', async () => {
    const urls = Array.from({ length: 20 }, (_, i) => `${target.origin}/n?batch=${i}`);
    const res = await service.call('POST', '/v1/scrape/batch', { requests: urls.map((url) => ({ url })) });
    expect(res.status).toBe(202);
    await waitFor(
      async () =>
        (await service.call('GET', `/v1/batches/${res.body.batch_id}`)).body.data?.counts.completed === 20,
      { what: 'the batch to complete', timeoutMs: 30_000, intervalMs: 100 },
    );
  });

  test('no statement of the service, pg-boss or Kysely was prepared under a name', () => {
    // pg-boss's statements pass here too (it uses the same pg), and the service's hot statements.
    expect(parsed.some((p) => p.text.includes('pgboss.'))).toBe(true);
    expect(parsed.some((p) => p.text.includes('omniscrape.scrape_jobs'))).toBe(true);
    expect(parsed.filter((p) => p.name !== '')).toEqual([]);
  });

  test('all Postgres connections terminated twice mid-flow: every accepted job finishes', async () => {
    const terminate = () =>
      service
        .query(
          'select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
        )
        .catch(() => undefined);
    const jobs = 300;
    const tally = await submitJobs(service, jobs, (i) => `${target.origin}/n?terminate=${i}`, {
      onAccepted: async (count) => {
        if (count === 100 || count === 200) await terminate();
      },
    });
    expect(tally.unexpected).toEqual({});
    expect(tally.accepted).toHaveLength(jobs);
    expect(await waitUntilAllFinished(service, tally.accepted, 90_000)).toEqual({ completed: jobs });
    // The LISTEN connections came back (directly): a wait is still answered by its notice.
    await waitFor(async () => (await directConnections()).length === 3, {
      what: 'the LISTEN connections back',
    });
  }, 150_000);
});

describe('the commands behind PgBouncer', () => {
  test('migrate and keys run with the direct URL; a wrong one stops api, migrate and keys with one line naming it', async () => {
    const env = {
      DATABASE_URL: bouncer.url(database.url),
      OMNISCRAPE_DIRECT_DATABASE_URL: database.url,
      OMNISCRAPE_PREPARED_STATEMENTS: 'false',
      PORT: String(await freePort()),
    };
    const migrated = await runCli(['migrate'], env);
    expect(migrated).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('omniscrape tables: up to date'),
    });
    expect(await runCli(['keys', 'list'], env)).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('alpha'),
    });
    const wrong = Object.assign(new URL(database.url), { password: 'not-the-password' }).toString();
    for (const args of [['api'], ['migrate'], ['keys', 'list']]) {
      const res = await runCli(args, { ...env, OMNISCRAPE_DIRECT_DATABASE_URL: wrong });
      expect(res.code).toBe(1);
      expect(res.stderr.trimEnd().split('\n')).toEqual([
        expect.stringMatching(
          /^omniscrape: Postgres at .* refused the password: .*\(check OMNISCRAPE_DIRECT_DATABASE_URL\)$/,
        ),
      ]);
    }
  });
});

describe('why the switch is needed: PgBouncer 1.18 in transaction mode', () => {
  test('loses named prepared statements between transactions: another client finds it there, a client finds its own gone', async () => {
    const other = await createTestDatabase(); // a pool of PgBouncer's own: its first server connection is ours
    const url = bouncer.url(other.url);
    const statement = namedStatement('omniscrape_pgbouncer_probe', 'select $1::int + 1 as n');
    const [a, b] = [
      new PreparingClient({ connectionString: url }),
      new PreparingClient({ connectionString: url }),
    ];
    try {
      await Promise.all([a.connect(), b.connect()]);
      expect((await a.query(statement.text, [1])).rows).toEqual([{ n: 2 }]);
      // B is handed the server connection A prepared it on, and prepares it again.
      await expect(b.query(statement.text, [1])).rejects.toMatchObject({
        code: '42P05',
        message: 'prepared statement "omniscrape_pgbouncer_probe" already exists',
      });
      // While B's transaction holds that server connection, A runs on a new one, which never saw it.
      await b.query('begin');
      await expect(a.query(statement.text, [1])).rejects.toMatchObject({
        code: '26000',
        message: 'prepared statement "omniscrape_pgbouncer_probe" does not exist',
      });
      await b.query('rollback');
    } finally {
      await Promise.all([a.end(), b.end()]);
      await other.drop();
    }
  });
});

describe('detectPgBouncer (for omniscrape doctor)', () => {
  test("reads PgBouncer's version and pool mode from its admin console", async () => {
    const detection = await detectPgBouncer(bouncer.url(database.url));
    expect(detection).toEqual({
      pgbouncer: true,
      version: '1.18.0',
      poolMode: 'transaction',
      poolModeSource: 'admin-console',
      preparedStatements: false,
    });
    expect(pgBouncerProblems(detection, { preparedStatements: true })).toEqual([
      expect.stringMatching(/^set OMNISCRAPE_PREPARED_STATEMENTS=false: /),
      expect.stringMatching(/^set OMNISCRAPE_DIRECT_DATABASE_URL /),
    ]);
    expect(
      pgBouncerProblems(detection, { preparedStatements: false, directDatabaseUrl: database.url }),
    ).toEqual([]);
  });

  test('tells Postgres itself apart', async () => {
    expect(await detectPgBouncer(database.url)).toEqual({ pgbouncer: false });
  });

  test('observes the pool mode when the admin console refuses the user', async () => {
    for (const mode of ['transaction', 'session'] as const) {
      const refusing = await startPgBouncer(database.url, { settings: { admin_users: '', pool_mode: mode } });
      try {
        expect(await detectPgBouncer(refusing.url(database.url))).toEqual({
          pgbouncer: true,
          poolMode: mode,
          poolModeSource: 'observed',
        });
      } finally {
        await refusing.stop();
      }
    }
  });
});
