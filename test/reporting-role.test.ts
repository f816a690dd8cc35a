import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { runCli } from './helpers/cli';
import { useServiceAndTarget, waitForJob } from './helpers/service';

const env = useServiceAndTarget();
const roles: string[] = [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-reporting-role-'));

/** A role name no other test file uses (roles belong to the whole Postgres cluster). */
function newRoleName(): string {
  const role = `omniscrape_reader_${randomBytes(4).toString('hex')}`;
  roles.push(role);
  return role;
}

function passwordFile(password: string): string {
  const file = path.join(dir, `${randomBytes(4).toString('hex')}.txt`);
  fs.writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return file;
}

/** A connection to the service's database as `role`. */
async function connectAs(role: string, password: string): Promise<pg.Client> {
  const url = new URL(env.service.databaseUrl);
  url.username = role;
  url.password = password;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  return client;
}

/** The Postgres error code a statement fails with (undefined: it succeeded). */
async function failureOf(client: pg.Client, statement: string): Promise<string | undefined> {
  try {
    await client.query(statement);
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

afterAll(async () => {
  // Drop the roles: first what they hold in the test database, then the roles themselves.
  for (const role of roles) {
    await env.service.query(`drop owned by ${role}`).catch(() => undefined);
  }
  const admin = new pg.Client({ connectionString: process.env.OMNISCRAPE_TEST_ADMIN_URL });
  await admin.connect();
  try {
    await env.service?.stop(); // drops the test database, and with it the roles' default privileges
    for (const role of roles) await admin.query(`drop role if exists ${role}`).catch(() => undefined);
  } finally {
    await admin.end();
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('omniscrape reporting grant', () => {
  const cliEnv = () => ({ DATABASE_URL: env.service.databaseUrl });

  test('--create makes a login role that reads the three views and nothing else: no key digests, results or pg-boss tables', async () => {
    const submitted = await env.service.call('POST', '/v1/scrape/async', {
      url: `${env.target.origin}/plain`,
    });
    await waitForJob(env.service, submitted.body.job_id);
    const role = newRoleName();
    const password = `pw ${randomBytes(6).toString('hex')} ünïcode`;

    const res = await runCli(
      ['reporting', 'grant', role, '--create', '--password-file', passwordFile(password)],
      cliEnv(),
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`created login role "${role}"`);
    expect(res.stdout).not.toContain(password);

    const client = await connectAs(role, password);
    try {
      const history = await client.query(
        'select job_id, api_key_name, status from omniscrape_reporting.job_history',
      );
      expect(history.rows).toContainEqual({
        job_id: submitted.body.job_id,
        api_key_name: 'alpha',
        status: 'completed',
      });
      expect(
        (await client.query('select * from omniscrape_reporting.daily_usage')).rows.length,
      ).toBeGreaterThan(0);
      expect(
        (await client.query('select * from omniscrape_reporting.host_health')).rows.length,
      ).toBeGreaterThan(0);

      // 42501: insufficient privilege — for the schemas themselves, whatever the table.
      for (const statement of [
        'select key_hash from omniscrape.api_keys',
        'select result from omniscrape.job_results',
        'select * from omniscrape.scrape_jobs',
        'select * from omniscrape.daily_usage_live',
        'select * from pgboss.job',
        'select * from pgboss.queue',
      ])
        expect({ statement, code: await failureOf(client, statement) }).toEqual({ statement, code: '42501' });
      // Read-only: nothing but SELECT on the views, nothing to create in the schema.
      const { rows } = await client.query(
        `select privilege_type from information_schema.role_table_grants where grantee = $1 order by 1`,
        [role],
      );
      expect(new Set(rows.map((r) => r.privilege_type))).toEqual(new Set(['SELECT']));
      expect(await failureOf(client, `create view omniscrape_reporting.mine as select 1`)).toBe('42501');
    } finally {
      await client.end();
    }
  });

  test('a view a later migration adds to the schema is readable by a role granted before', async () => {
    const role = newRoleName();
    const password = randomBytes(12).toString('hex');
    expect(
      (
        await runCli(
          ['reporting', 'grant', role, '--create', '--password-file', passwordFile(password)],
          cliEnv(),
        )
      ).code,
    ).toBe(0);
    await env.service.query(`create view omniscrape_reporting.later_view as select 1 as one`);
    const client = await connectAs(role, password);
    try {
      expect((await client.query('select one from omniscrape_reporting.later_view')).rows).toEqual([
        { one: 1 },
      ]);
    } finally {
      await client.end();
      await env.service.query('drop view omniscrape_reporting.later_view');
    }
  });

  test('without --create it grants an existing role, which keeps its password', async () => {
    const role = newRoleName();
    const password = randomBytes(12).toString('hex');
    await env.service.query(`create role ${role} login password '${password}'`);
    const res = await runCli(['reporting', 'grant', role], cliEnv());
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(
      `role "${role}" may read omniscrape_reporting.daily_usage, omniscrape_reporting.host_health, omniscrape_reporting.job_history\n`,
    );
    const client = await connectAs(role, password);
    try {
      await client.query('select count(*) from omniscrape_reporting.job_history');
    } finally {
      await client.end();
    }
  });

  test.each([
    ['no role name', [], 'missing required argument'],
    ['an unknown flag', ['someone', '--admin'], "unknown option '--admin'"],
    ['--create without a password file', ['someone', '--create'], '--create needs --password-file'],
    [
      'a password file without --create',
      ['someone', '--password-file', '/etc/hostname'],
      '--password-file goes with --create',
    ],
    [
      'an unreadable password file',
      ['someone', '--create', '--password-file', '/nonexistent/pw'],
      'cannot read /nonexistent/pw',
    ],
    ['a role name that is too long', ['r'.repeat(64)], 'the role name must be 1 to 63 bytes long'],
  ])('%s prints one line and exits non-zero, connecting to nothing', async (_what, args, message) => {
    // No DATABASE_URL: bad input is refused before any connection is attempted.
    const res = await runCli(['reporting', 'grant', ...args], { DATABASE_URL: '', OMNISCRAPE_DATA_DIR: dir });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr.trimEnd().split('\n')).toEqual([expect.stringContaining(message)]);
    expect(res.stderr).toMatch(/^omniscrape: /);
  });

  test('a role that exists already (with --create) or does not (without) is one line naming the fix', async () => {
    const role = newRoleName();
    const file = passwordFile('x'.repeat(16));
    expect(
      (await runCli(['reporting', 'grant', role, '--create', '--password-file', file], cliEnv())).code,
    ).toBe(0);
    const twice = await runCli(['reporting', 'grant', role, '--create', '--password-file', file], cliEnv());
    expect(twice.code).toBe(1);
    expect(twice.stderr).toBe(
      `omniscrape: a role named "${role}" already exists: leave out --create to grant it\n`,
    );
    const unknown = await runCli(['reporting', 'grant', `${role}_nobody`], cliEnv());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(
      `omniscrape: no role named "${role}_nobody": add --create --password-file FILE to create it\n`,
    );
  });
});
