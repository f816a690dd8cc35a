import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A fresh database on the suite's Postgres for one test file, dropped by `drop()`. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = process.env.OMNISCRAPE_TEST_ADMIN_URL;
  if (!adminUrl)
    throw new Error('OMNISCRAPE_TEST_ADMIN_URL is not set: run the tests through jest (global setup)');
  const name = `omniscrape_test_${randomBytes(6).toString('hex')}`;
  await withClient(adminUrl, (client) => client.query(`create database ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () =>
      withClient(adminUrl, (client) => client.query(`drop database if exists ${name} with (force)`)).then(
        () => undefined,
      ),
  };
}

/** Runs `fn` on a connection of its own to `url`, closed after. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * The two roles of "Roles and grants" (docs/production-postgres.md) in the database at `url`: an
 * owner that may create schemas in it, and a runtime role with no rights yet. Creating in schema
 * public is revoked, as that page says for Postgres 13 and 14, where every role may.
 */
export async function createOwnerAndRuntimeRoles(
  url: string,
  owner: { name: string; password: string },
  runtime: { name: string; password: string },
): Promise<void> {
  const dbName = new URL(url).pathname.slice(1);
  await withClient(url, async (admin) => {
    await admin.query(`create role ${owner.name} login password '${owner.password}'`);
    await admin.query(`grant create on database ${dbName} to ${owner.name}`);
    await admin.query(`create role ${runtime.name} login password '${runtime.password}'`);
    await admin.query(`revoke create on schema public from public`);
  });
}
