import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { StartupFailure } from '../src/startup-failure';
import { assertSupportedPostgres, OLDEST_SUPPORTED_POSTGRES } from '../src/admin/migrate';
import { openStore } from '../src/db/pool';
import { runCli, spawnCli } from './helpers/cli';
import { freePort } from './helpers/free-port';
import { startDisposablePostgres } from './helpers/postgres-server';
import { startTestService } from './helpers/service';

/** One `omniscrape: …` line on stderr, no stack trace, a non-zero exit. */
function expectOneLineFailure(res: { code: number | null; stderr: string }, says: RegExp): void {
  expect(res.stderr).not.toContain('    at ');
  expect(res.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(res.stderr).toMatch(/^omniscrape: /);
  expect(res.stderr).toMatch(says);
  expect(res.code).not.toBe(0);
  expect(res.code).not.toBeNull();
}

/** Holds a port on 127.0.0.1, as another program would. */
async function occupy(port: number): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return server;
}

/** Whether a server runs on the data dir: its pid file is there and names a live process. */
function postgresRunningOn(dataDir: string): boolean {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return false;
  const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let folder: string;
beforeAll(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-startup-'));
  fs.chmodSync(folder, 0o755); // as root, the postgres user must enter it to reach the data dir in place
});
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

describe('start-up failures end in one line', () => {
  test('serve with its API port taken exits at once, before starting the embedded Postgres', async () => {
    const apiPort = await freePort();
    const holder = await occupy(apiPort);
    try {
      const dataDir = path.join(folder, 'api-port-taken');
      const res = await runCli(['serve'], {
        DATABASE_URL: '',
        OMNISCRAPE_DATA_DIR: dataDir,
        PORT: String(apiPort),
        HOST: '127.0.0.1',
        OMNISCRAPE_EMBEDDED_PG_PORT: String(await freePort()),
      });
      expectOneLineFailure(res, new RegExp(`port ${apiPort} is already in use.*PORT`));
      expect(fs.existsSync(path.join(dataDir, 'postgres'))).toBe(false);
    } finally {
      holder.close();
    }
  });

  test('serve with the embedded Postgres port taken exits with one line, leaves no Postgres running, and the next start works with a password only its owner can read', async () => {
    const dataDir = path.join(folder, 'pg-port-taken');
    const pgPort = await freePort();
    const env = {
      DATABASE_URL: '',
      OMNISCRAPE_DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      OMNISCRAPE_EMBEDDED_PG_PORT: String(pgPort),
    };
    const holder = await occupy(pgPort);
    try {
      const res = await runCli(['serve'], { ...env, PORT: String(await freePort()) });
      expectOneLineFailure(res, new RegExp(`port ${pgPort} .*in use.*OMNISCRAPE_EMBEDDED_PG_PORT`));
    } finally {
      holder.close();
    }
    expect(postgresRunningOn(path.join(dataDir, 'postgres'))).toBe(false);

    // The same data dir, the port now free: it starts.
    const child = spawnCli(['serve'], { ...env, PORT: String(await freePort()) });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', () => /DATABASE_URL: .*\n/.test(stdout) && resolve());
        void exited.then(() => reject(new Error(`serve exited: ${stderr}`)));
      });
      const passwordFile = path.join(dataDir, 'postgres-password');
      expect(fs.statSync(passwordFile).mode & 0o777).toBe(0o600);
      const password = fs.readFileSync(passwordFile, 'utf8').trim();
      expect(stdout).not.toContain(password); // the banner names the file, not the password
      expect(stdout).toContain(`postgres://postgres@127.0.0.1:${pgPort}/postgres`);
      await expect(connect(pgPort, 'omniscrape')).rejects.toMatchObject({ code: '28P01' });
      await expect(connect(pgPort, password)).resolves.toBeUndefined();
    } finally {
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    }
    expect(postgresRunningOn(path.join(dataDir, 'postgres'))).toBe(false);
  });

  test('a key in OMNISCRAPE_API_KEYS shorter than 20 characters stops serve with one line naming it', async () => {
    const dataDir = path.join(folder, 'short-key');
    const res = await runCli(['serve'], {
      DATABASE_URL: '',
      OMNISCRAPE_DATA_DIR: dataDir,
      OMNISCRAPE_API_KEYS: 'ops:short-key-0000001',
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
    });
    expectOneLineFailure(
      res,
      /OMNISCRAPE_API_KEYS: entry "ops" must be name:key with a key of 20\+ characters/,
    );
    expect(fs.existsSync(path.join(dataDir, 'postgres'))).toBe(false);
  });

  test('a data folder that cannot be written stops serve with one line naming it', async () => {
    const file = path.join(folder, 'a-file');
    fs.writeFileSync(file, '');
    const res = await runCli(['serve'], {
      DATABASE_URL: '',
      OMNISCRAPE_DATA_DIR: path.join(file, 'data'),
      PORT: String(await freePort()),
      OMNISCRAPE_EMBEDDED_PG_PORT: String(await freePort()),
    });
    expectOneLineFailure(res, /cannot write the data folder .*a-file\/data.*OMNISCRAPE_DATA_DIR/);
  });

  test('a DATABASE_URL whose password Postgres refuses stops serve, migrate and keys with one line that does not show the password', async () => {
    const server = await startDisposablePostgres();
    try {
      const url = new URL(server.url);
      url.password = 'not-the-password';
      for (const args of [['serve'], ['migrate'], ['keys', 'list']]) {
        const res = await runCli(args, { DATABASE_URL: url.toString(), PORT: String(await freePort()) });
        expectOneLineFailure(
          res,
          new RegExp(`Postgres at 127.0.0.1:${server.port}/postgres refused the password`),
        );
        expect(res.stderr).not.toContain('not-the-password');
      }
    } finally {
      await server.destroy();
    }
  });

  test('a DATABASE_URL where no Postgres listens stops serve with one line', async () => {
    const port = await freePort();
    const res = await runCli(['serve'], {
      DATABASE_URL: `postgres://someone:secret@127.0.0.1:${port}/db`,
      PORT: String(await freePort()),
    });
    expectOneLineFailure(
      res,
      new RegExp(`cannot reach Postgres at 127.0.0.1:${port}/db: connection refused`),
    );
    expect(res.stderr).not.toContain('secret');
  });

  test(`a Postgres older than ${OLDEST_SUPPORTED_POSTGRES} is refused, naming both versions`, async () => {
    const server = await startDisposablePostgres();
    const store = openStore(server.url, { max: 1 });
    try {
      await expect(assertSupportedPostgres(store.db)).resolves.toBeUndefined();
      // No older server is at hand: ask for a version newer than any, and the same check refuses this one.
      const refusal = assertSupportedPostgres(store.db, 99);
      await expect(refusal).rejects.toBeInstanceOf(StartupFailure);
      await expect(refusal).rejects.toThrow(/runs Postgres \d+\.\d+.*needs Postgres 99 or later/);
    } finally {
      await store.close();
      await server.destroy();
    }
  });

  test('the service itself refuses to start on a taken API port (EADDRINUSE), rather than running without its API', async () => {
    const apiPort = await freePort();
    const holder = await occupy(apiPort);
    try {
      await expect(
        startTestService({ env: { PORT: String(apiPort) }, roles: { api: true, worker: false } }),
      ).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      holder.close();
    }
  });
});

async function connect(port: number, password: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  await client.connect();
  await client.end();
}
