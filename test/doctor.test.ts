import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { Migrator } from 'kysely/migration';
import { migrations } from '../migrations';
import { loadConfig } from '../src/config';
import { migrateDatabase } from '../src/admin/database-setup';
import { runDoctor, type DoctorOptions } from '../src/admin/doctor/doctor';
import { formatVerdict } from '../src/admin/doctor/verdict';
import { PGBOSS_SCHEMA } from '../src/jobs/queue';
import { createLogger } from '../src/logger';
import { openStore } from '../src/db/pool';
import { grantRuntime, runtimeGrants, schemaOwners } from '../src/admin/runtime-role';
import { runCli } from './helpers/cli';
import { createOwnerAndRuntimeRoles, createTestDatabase, withClient } from './helpers/database';
import { startPgBouncer } from './helpers/pgbouncer';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
const suffix = randomBytes(4).toString('hex');
/** Owns the schemas, as on a managed service: no superuser. */
const owner = { name: `doctor_owner_${suffix}`, password: `owner-${suffix}` };
/** What the service runs as, with the runtime grants and nothing more. */
const runtime = { name: `doctor_app_${suffix}`, password: `app-${suffix}` };

function urlAs(role: { name: string; password: string }, url = database.url): string {
  const as = new URL(url);
  as.username = role.name;
  as.password = role.password;
  return as.toString();
}

/** The doctor in this process, on DATABASE_URL `url`, for one api and one worker unless told otherwise. */
async function doctor(url: string, options: Partial<DoctorOptions> = {}, env: Record<string, string> = {}) {
  const config = loadConfig({ DATABASE_URL: url, OMNISCRAPE_LOG_LEVEL: 'silent', ...env });
  const verdicts = await runDoctor({
    config,
    databaseUrl: url,
    deployment: { api: 1, worker: 1, serve: 0 },
    ...options,
  });
  return verdicts.map(formatVerdict);
}

/** A database as a deploy leaves it: migrated by the owner, the runtime role granted by it. */
beforeAll(async () => {
  database = await createTestDatabase();
  await createOwnerAndRuntimeRoles(database.url, owner, runtime);
  const config = loadConfig({ DATABASE_URL: urlAs(runtime), OMNISCRAPE_LOG_LEVEL: 'silent' });
  await migrateDatabase(config, urlAs(owner), createLogger(config));
  const store = openStore(urlAs(owner), { max: 1 });
  try {
    await grantRuntime(
      store.db,
      runtimeGrants(runtime.name, PGBOSS_SCHEMA, await schemaOwners(store.db, PGBOSS_SCHEMA)),
    );
  } finally {
    await store.close();
  }
});

afterAll(async () => {
  await database?.drop();
  await withClient(process.env.OMNISCRAPE_TEST_ADMIN_URL!, async (admin) => {
    for (const role of [runtime.name, owner.name]) await admin.query(`drop role if exists ${role}`);
  });
});

test('a healthy database passes: every check ok, exit 0', async () => {
  const res = await runCli(['doctor'], { DATABASE_URL: urlAs(runtime) });
  const lines = res.stdout.trim().split('\n');
  expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
  expect(lines.slice(0, -1).filter((line) => !line.startsWith('ok   '))).toEqual([]);
  expect(lines).toEqual([
    expect.stringMatching(/^ok {3}postgres version: 1\d\.\d+: supported \(13 or later; CI runs 15 and 18\)$/),
    'ok   writable: the primary, read-write',
    'ok   encoding: UTF8',
    'ok   default_transaction_isolation: read committed',
    'ok   statement_timeout: off (migrations run without one either way)',
    'ok   lock_timeout: off (migrations set their own, short)',
    'ok   idle_in_transaction_session_timeout: off',
    "ok   migrations: omniscrape's all applied",
    expect.stringMatching(/^ok {3}pg-boss: schema version \d+, this release's$/),
    `ok   runtime role: role "${runtime.name}" has the runtime grants, and no DDL rights`,
    'ok   pgbouncer: none: DATABASE_URL reaches Postgres itself',
    expect.stringMatching(
      /^ok {3}max_connections: 1 api × 35 \+ 1 worker × 21 = 56 connections at most; max_connections \d+ leaves \d+/,
    ),
    'omniscrape doctor: nothing would break the service',
  ]);
});

test('a pending migration fails, naming it, and the command exits 1', async () => {
  const behind = await createTestDatabase();
  try {
    const store = openStore(behind.url, { max: 1 });
    try {
      await store.db.schema.createSchema('omniscrape').execute();
      const migrator = new Migrator({
        db: store.db,
        provider: { getMigrations: () => Promise.resolve(migrations) },
        migrationTableSchema: 'omniscrape',
      });
      const { error } = await migrator.migrateTo('0010_reporting');
      if (error) throw error instanceof Error ? error : new Error(inspect(error));
    } finally {
      await store.close();
    }
    const res = await runCli(['doctor'], { DATABASE_URL: behind.url });
    expect(res.code).toBe(1);
    const pending = Object.keys(migrations).filter((name) => name > '0010_reporting');
    // More than three are named by the first and the last.
    const named = pending.length > 3 ? `${pending[0]} … ${pending.at(-1)}` : pending.join(', ');
    expect(res.stdout).toContain(
      `fail migrations: ${pending.length} pending (${named}): run \`omniscrape migrate\` as the owner role (OMNISCRAPE_MIGRATION_DATABASE_URL)`,
    );
    expect(res.stdout).toContain('fail pg-boss: pg-boss schema (not installed): run `omniscrape migrate`');
    expect(res.stdout).toMatch(/\nomniscrape doctor: 2 would break the service/);
  } finally {
    await behind.drop();
  }
});

test('a missing grant fails, naming it and the command that gives it', async () => {
  await withClient(urlAs(owner), (c) => c.query(`revoke insert on omniscrape.api_keys from ${runtime.name}`));
  try {
    expect(await doctor(urlAs(runtime))).toContain(
      `fail runtime role: role "${runtime.name}" lacks INSERT on omniscrape.api_keys: run \`omniscrape db grant-runtime ${runtime.name} --apply\` as the owner role`,
    );
  } finally {
    await withClient(urlAs(owner), (c) => c.query(`grant insert on omniscrape.api_keys to ${runtime.name}`));
  }
});

test('a server older than the oldest supported version fails', async () => {
  const lines = await doctor(urlAs(runtime), { oldestSupportedPostgres: 99 });
  expect(lines[0]).toMatch(
    /^fail postgres version: the database runs Postgres 1\d\.\d+.*, and omniscrape needs Postgres 99 or later: upgrade it/,
  );
});

test("max_connections too low for the deployment's connection budget fails", async () => {
  const lines = await doctor(urlAs(runtime), { deployment: { api: 2, worker: 10, serve: 0 } });
  expect(lines).toContainEqual(
    expect.stringMatching(
      /^fail max_connections: 2 api × 35 \+ 10 worker × 21 = 280 connections at most, more than max_connections \d+ leaves \d+ \(\d+ reserved\): raise max_connections/,
    ),
  );
  // Smaller pools fit the same processes.
  const smaller = await doctor(
    urlAs(runtime),
    { deployment: { api: 2, worker: 10, serve: 0 } },
    { OMNISCRAPE_WORKER_DB_POOL_SIZE: '4', OMNISCRAPE_PGBOSS_POOL_SIZE: '4' },
  );
  expect(smaller).toContainEqual(
    expect.stringMatching(/^ok {3}max_connections: 2 api × \d+ \+ 10 worker × 10 = /),
  );
});

test("the role's own settings are what the doctor reads: a short idle-in-transaction timeout warns", async () => {
  await withClient(database.url, (c) =>
    c.query(`alter role ${runtime.name} set idle_in_transaction_session_timeout = '2s'`),
  );
  try {
    expect(await doctor(urlAs(runtime))).toContainEqual(
      expect.stringMatching(
        /^warn idle_in_transaction_session_timeout: 2 s, under 10 s: a process paused between two statements .* would lose its transaction; set it to 0 or 10 s or more for this role/,
      ),
    );
  } finally {
    await withClient(database.url, (c) =>
      c.query(`alter role ${runtime.name} reset idle_in_transaction_session_timeout`),
    );
  }
});

test('behind PgBouncer in transaction mode it names the settings the service then needs, and passes with them', async () => {
  const bouncer = await startPgBouncer(database.url);
  try {
    const through = bouncer.url(database.url);
    const bare = (await doctor(through)).filter((line) => line.includes('pgbouncer:'));
    expect(bare).toEqual([
      expect.stringMatching(
        /^fail pgbouncer: PgBouncer 1\.\d+(\.\d+)? in transaction mode \(its admin console\): set OMNISCRAPE_PREPARED_STATEMENTS=false/,
      ),
      expect.stringMatching(/^fail pgbouncer: .*: set OMNISCRAPE_DIRECT_DATABASE_URL to Postgres itself/),
    ]);
    const configured = await doctor(
      through,
      {},
      { OMNISCRAPE_PREPARED_STATEMENTS: 'false', OMNISCRAPE_DIRECT_DATABASE_URL: database.url },
    );
    expect(configured).toContainEqual(
      expect.stringMatching(
        /^ok {3}pgbouncer: PgBouncer 1\.\d+(\.\d+)? in transaction mode \(its admin console\): the settings fit$/,
      ),
    );
    expect(configured).toContainEqual(
      expect.stringMatching(
        /^ok {3}max_connections: 1 api × 1 \+ 1 worker × 2 = 3 connections at most directly \(the pools go through PgBouncer\)/,
      ),
    );
  } finally {
    await bouncer.stop();
  }
});
