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
    return { url: container.getConnectionUri(), source: 'testcontainers', stop: async () => void (await container.stop()) };
  }
  const embedded = await startDisposableEmbeddedPostgres();
  return { url: embedded.url, source: 'embedded', stop: embedded.destroy };
}

/**
 * A throw-away embedded server on a free port. Its data survives `stop()` (tests that stop and
 * start it again: an outage), and `destroy()` removes it. The functional suite runs it with fsync
 * off, as durability is not under test there; `durable` keeps Postgres's defaults (fsync,
 * synchronous_commit and full_page_writes on), for the fault tests whose point is durability.
 */
export async function startDisposableEmbeddedPostgres(
  options: { durable?: boolean } = {},
): Promise<RunningPostgres & { destroy(): Promise<void>; crash(): Promise<void> }> {
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
    crash: () => killPostgres(dataDir),
    async destroy() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A crash, not a shutdown: SIGKILL to the postmaster and every process it started, all at once.
 * Nothing is checkpointed and the WAL buffers in shared memory are lost, so whatever was committed
 * without waiting for its flush (synchronous_commit off) may be gone; the next start recovers from
 * the WAL on disk.
 */
async function killPostgres(dataDir: string): Promise<void> {
  const postmaster = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const pids = [postmaster, ...childrenOf(postmaster)];
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  while (pids.some((pid) => fs.existsSync(`/proc/${pid}`) && !isZombie(pid))) await new Promise((r) => setTimeout(r, 20));
}

function childrenOf(parent: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]) === parent;
      } catch {
        return false; // exited meanwhile
      }
    })
    .map(Number);
}

function isZombie(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return true;
  }
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
