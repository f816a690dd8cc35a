import { randomBytes } from 'node:crypto';
import { migrations } from '../migrations';
import { loadConfig } from '../src/config';
import { createBoss, PGBOSS_SCHEMA } from '../src/jobs/queue';
import { ABANDONED_SYNC_SCRAPES_QUEUE } from '../src/maintenance/abandoned-sync-scrapes';
import { HISTORY_RETENTION_QUEUE } from '../src/maintenance/history-retention';
import { PURGE_IDEMPOTENCY_KEYS_QUEUE } from '../src/maintenance/idempotency-key-purge';
import { PURGE_RESULTS_QUEUE } from '../src/maintenance/result-purge';
import { openStore } from '../src/db/pool';
import { checkRuntimeRole } from '../src/admin/runtime-role';
import { runCli } from './helpers/cli';
import { createOwnerAndRuntimeRoles, createTestDatabase, withClient } from './helpers/database';
import {
  startApiRole,
  jobEnded,
  startRole,
  startWorkerAndApi,
  type RoleProcess,
} from './helpers/role-processes';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { waitFor } from './helpers/wait';

const KEY = 'least-privilege-key-0001';
/**
 * Undone (the last first) and applied again in the upgrade test: 0011 and 0013 create tables,
 * which the runtime role must get.
 */
const LAST_MIGRATIONS = [
  '0011_admin_keys_and_sessions',
  '0012_request_ids',
  '0013_webhook_signing_secrets',
  '0014_job_engines',
];
const MAINTENANCE_QUEUES = [
  PURGE_RESULTS_QUEUE,
  ABANDONED_SYNC_SCRAPES_QUEUE,
  PURGE_IDEMPOTENCY_KEYS_QUEUE,
  HISTORY_RETENTION_QUEUE,
];

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let target: TargetServer;
const suffix = randomBytes(4).toString('hex');
/** Owns the schemas: may create in the database, and is no superuser (as on a managed service). */
const owner = { name: `omniscrape_owner_${suffix}`, password: `owner ${suffix}` };
/** What `api` and `worker` run as: a login, and nothing granted but by `db grant-runtime`. */
const runtime = { name: `omniscrape_app_${suffix}`, password: `app ${suffix}` };
const running: RoleProcess[] = [];

function urlAs(role: { name: string; password: string }): string {
  const url = new URL(database.url);
  url.username = role.name;
  url.password = role.password;
  return url.toString();
}

/** The settings of every command here: the runtime role in DATABASE_URL, the owner for migrations. */
const env = () => ({
  DATABASE_URL: urlAs(runtime),
  OMNISCRAPE_MIGRATION_DATABASE_URL: urlAs(owner),
  OMNISCRAPE_API_KEYS: `lp:${KEY}`,
});

beforeAll(async () => {
  database = await createTestDatabase();
  target = await startTargetServer();
  await createOwnerAndRuntimeRoles(database.url, owner, runtime);
});

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await target?.close();
  // The roles own objects and default privileges in the test database: it goes first, then they.
  await database?.drop();
  await withClient(process.env.OMNISCRAPE_TEST_ADMIN_URL!, async (admin) => {
    for (const role of [runtime.name, owner.name]) await admin.query(`drop role if exists ${role}`);
  });
});

/** Ends with one line on stderr, exit code 1. */
function expectOneLineRefusal(res: { code: number | null; stderr: string }, pattern: RegExp) {
  expect(res.stderr.trim().split('\n')).toHaveLength(1);
  expect(res.stderr).toMatch(pattern);
  expect(res.code).toBe(1);
}

describe('the API and workers as a role that may not create anything', () => {
  test('api and worker refuse an unmigrated database with one line naming what is pending', async () => {
    for (const role of ['api', 'worker']) {
      const res = await runCli([role], { ...env(), PORT: '0' });
      expectOneLineRefusal(
        res,
        /^omniscrape: pending migrations: 0001_job_history_and_keys, .*0014_job_engines, pg-boss schema \(not installed\); run `omniscrape migrate`/,
      );
    }
  });

  test('migrate runs as the owner; grant-runtime prints the grants, which work as printed, and --apply gives the same', async () => {
    const migrated = await runCli(['migrate'], env());
    expect(migrated.stderr).toBe('');
    expect(migrated.stdout).toContain('applied: 0001_job_history_and_keys');
    expect(migrated.stdout).toMatch(/pg-boss queue tables: installed/);
    const [{ schema_owner }] = (
      await withClient(database.url, (c) =>
        c.query(
          `select pg_get_userbyid(nspowner) as schema_owner from pg_namespace where nspname = 'pgboss'`,
        ),
      )
    ).rows;
    expect(schema_owner).toBe(owner.name);

    // Without its grants the runtime role is told the command that gives them.
    expectOneLineRefusal(
      await runCli(['api'], { ...env(), PORT: '0' }),
      new RegExp(
        `^omniscrape: role "${runtime.name}" may not use .*omniscrape db grant-runtime ${runtime.name} --apply`,
      ),
    );

    const printed = await runCli(['db', 'grant-runtime', runtime.name], env());
    expect(printed.code).toBe(0);
    expect(printed.stdout).toContain(`grant usage on schema omniscrape to "${runtime.name}";`);
    expect(printed.stdout).toContain(
      `alter default privileges for role "${owner.name}" in schema pgboss grant select, insert, update, delete on tables to "${runtime.name}";`,
    );
    expect(printed.stdout).not.toMatch(/\b(create|owner to|all privileges)\b/i);
    // What psql does with the printed text, as the owner.
    await withClient(urlAs(owner), (c) => c.query(printed.stdout));
    const store = openStore(database.url, { max: 1 });
    try {
      expect(await checkRuntimeRole(store.db, runtime.name, PGBOSS_SCHEMA)).toEqual({
        missing: [],
        excess: [],
      });
      const applied = await runCli(['db', 'grant-runtime', runtime.name, '--apply'], env());
      expect(applied.stderr).toBe('');
      expect(applied.stdout).toContain(`role "${runtime.name}" may now run api and worker`);
      expect(await checkRuntimeRole(store.db, runtime.name, PGBOSS_SCHEMA)).toEqual({
        missing: [],
        excess: [],
      });
      // The owner, by contrast, may run DDL: the check says so.
      expect((await checkRuntimeRole(store.db, owner.name, PGBOSS_SCHEMA)).excess).toEqual(
        expect.arrayContaining([
          `CREATE on database ${new URL(database.url).pathname.slice(1)}`,
          'owns schema pgboss',
        ]),
      );
    } finally {
      await store.close();
    }
  });

  test('api and worker run the async flow as the runtime role; the CLI works as it too', async () => {
    const { worker, api } = await startWorkerAndApi(env(), running);

    const submitted = await api.call('POST', '/v1/scrape/async', { url: `${target.origin}/page` }, KEY);
    expect(submitted.status).toBe(202);
    const ended = await jobEnded(api, submitted.body.job_id, KEY);
    expect(ended.status).toBe('completed');
    expect(typeof ended.result.data.content).toBe('string');
    const sync = await api.call('POST', '/v1/scrape', { url: `${target.origin}/plain` }, KEY);
    expect(sync.status).toBe(200);
    // A webhook: its delivery is a pg-boss job of another queue, delivered and recorded by the worker.
    const hooked = await api.call(
      'POST',
      '/v1/scrape/async',
      { url: `${target.origin}/plain`, webhook: { url: `${target.origin}/plain` } },
      KEY,
    );
    expect(hooked.status).toBe(202);
    expect((await jobEnded(api, hooked.body.job_id, KEY)).status).toBe('completed');
    await waitFor(
      async () =>
        (await api.call('GET', `/v1/jobs/${hooked.body.job_id}/webhooks`, undefined, KEY)).body.data?.[0]
          ?.succeeded === true,
      { what: 'the webhook to be delivered', timeoutMs: 30_000, intervalMs: 100 },
    );

    // Admin commands with only DATABASE_URL set (no migration URL) need no DDL either.
    const runtimeOnly = { DATABASE_URL: urlAs(runtime) };
    const key = await runCli(['keys', 'create', 'made-by-the-runtime-role'], runtimeOnly);
    expect(key.code).toBe(0);
    expect(key.stdout.trim()).toMatch(/^osk_/);
    expect((await runCli(['cleanup'], runtimeOnly)).code).toBe(0);

    // Each maintenance duty runs once now (not at its cron slot), in the worker, as the runtime
    // role; meanwhile pg-boss's supervisor makes its passes there too.
    const boss = createBoss(loadConfig({}), urlAs(owner), 'admin');
    await boss.start();
    try {
      for (const queue of MAINTENANCE_QUEUES) await boss.send(queue);
    } finally {
      await boss.stop({ graceful: false });
    }
    await waitFor(
      async () => {
        const { rows } = await withClient(database.url, (c) =>
          c.query(
            `select (select count(*)::int from pgboss.job where name = any($1) and state = 'completed') as duties,
                    (select monitor_on is not null from pgboss.queue where name = 'scrape') as supervised`,
            [MAINTENANCE_QUEUES],
          ),
        );
        return rows[0].duties === MAINTENANCE_QUEUES.length && rows[0].supervised;
      },
      {
        what: 'every maintenance duty to run once, and a supervise pass',
        timeoutMs: 60_000,
        intervalMs: 250,
      },
    );

    await Promise.all([api.stop(), worker.stop()]);
    for (const p of [api, worker]) {
      // No error, and nothing refused (a warning too: pg-boss's background work logs at warn).
      expect({ output: p.output().match(/"level":(50|60).*|.*permission denied.*/g) }).toEqual({
        output: null,
      });
      expect(p.child.exitCode).toBe(0);
    }
  });

  test('after an upgrade brings a migration, api refuses; a worker --wait-for-migrations waits, then runs once migrate ran, its new table granted by default privileges', async () => {
    // The database as an earlier release left it: the last migrations not applied yet.
    const store = openStore(urlAs(owner), { max: 1 });
    try {
      for (const name of [...LAST_MIGRATIONS].reverse()) {
        await migrations[name]!.down!(store.db);
        await store.db
          .deleteFrom('omniscrape.kysely_migration' as never)
          .where('name' as never, '=', name as never)
          .execute();
      }
    } finally {
      await store.close();
    }
    expectOneLineRefusal(
      await runCli(['api'], { ...env(), PORT: '0' }),
      new RegExp(
        `^omniscrape: pending migrations: ${LAST_MIGRATIONS.join(', ')}; run \`omniscrape migrate\``,
      ),
    );

    const worker = startRole(['worker', '--wait-for-migrations'], env());
    running.push(worker);
    await waitFor(() => worker.output().includes('waiting for pending migrations'), {
      what: 'the worker to say it waits',
      timeoutMs: 30_000,
    });
    for (const name of LAST_MIGRATIONS) expect(worker.output()).toContain(name);
    expect(worker.child.exitCode).toBeNull();

    const migrated = await runCli(['migrate'], env());
    expect(migrated.stdout).toContain(`applied: ${LAST_MIGRATIONS.join(', ')}`);
    await worker.started;
    const api = await startApiRole(env());
    running.push(api);
    const submitted = await api.call('POST', '/v1/scrape/async', { url: `${target.origin}/page` }, KEY);
    expect((await jobEnded(api, submitted.body.job_id, KEY)).status).toBe('completed');
    const [{ granted }] = (
      await withClient(database.url, (c) =>
        c.query(
          `select has_table_privilege($1, 'omniscrape.dashboard_sessions', 'INSERT')
              and has_table_privilege($1, 'omniscrape.key_webhook_secrets', 'INSERT') as granted`,
          [runtime.name],
        ),
      )
    ).rows;
    expect(granted).toBe(true);
    await Promise.all([api.stop(), worker.stop()]);
  });
});
