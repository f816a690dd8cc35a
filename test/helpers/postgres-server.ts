import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/store/embedded-postgres';
import { freePort } from './free-port';

/**
 * The Postgres the suite runs against, chosen once: TEST_DATABASE_URL if set; else a
 * testcontainers PostgreSqlContainer when a container engine answers; else an embedded Postgres.
 * Never a mock.
 */
export interface TestPostgres {
  url: string;
  source: 'TEST_DATABASE_URL' | 'testcontainers' | 'embedded';
  stop(): Promise<void>;
}

export async function startTestPostgres(): Promise<TestPostgres> {
  if (process.env.TEST_DATABASE_URL) {
    return { url: process.env.TEST_DATABASE_URL, source: 'TEST_DATABASE_URL', stop: async () => undefined };
  }
  if (await containerEngineAnswers()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:17-alpine').start();
    return {
      url: container.getConnectionUri(),
      source: 'testcontainers',
      stop: async () => void (await container.stop()),
    };
  }
  const embedded = await startDisposableEmbeddedPostgres();
  return { url: embedded.url, source: 'embedded', stop: () => embedded.destroy() };
}

/**
 * A throw-away embedded server on a free port. Its data survives `stop()` (tests that stop and
 * start it again: an outage), and `destroy()` removes it. The functional suite runs it with fsync
 * off, as durability is not under test there; `durable` keeps Postgres's defaults (fsync,
 * synchronous_commit and full_page_writes on), for the fault tests whose point is durability.
 */
export async function startDisposableEmbeddedPostgres(
  options: { durable?: boolean } = {},
): Promise<RunningPostgres & { destroy(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-pg-'));
  fs.chmodSync(dir, 0o755);
  const dataDir = path.join(dir, 'data');
  const server = await startEmbeddedPostgres({
    dataDir,
    port: await freePort(),
    persistent: true,
    settings: options.durable ? {} : { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
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
