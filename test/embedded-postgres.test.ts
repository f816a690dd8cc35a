import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { StartupFailure } from '../src/startup-failure';
import { startEmbeddedPostgres, type RunningPostgres } from '../src/postgres-server/embedded-postgres';
import { freePort } from './helpers/free-port';

const asRoot = process.getuid?.() === 0;
const rootOnly = asRoot ? test : test.skip;

let folder: string;
const servers: RunningPostgres[] = [];
beforeAll(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-embedded-'));
  fs.chmodSync(folder, 0o755);
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

async function start(
  options: Partial<Parameters<typeof startEmbeddedPostgres>[0]> & { dataDir: string },
): Promise<RunningPostgres> {
  const server = await startEmbeddedPostgres({
    port: await freePort(),
    persistent: true,
    settings: { fsync: 'off' },
    ...options,
  });
  servers.push(server);
  return server;
}

async function query(url: string, text: string, password?: string): Promise<unknown[]> {
  const withPassword = new URL(url);
  if (password !== undefined) withPassword.password = password;
  const client = new pg.Client({ connectionString: withPassword.toString() });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

/** The binary a process runs (/proc/<pid>/exe). */
function executableOf(dataDir: string): string {
  const pid = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0];
  return fs.readlinkSync(`/proc/${pid}/exe`);
}

describe('embedded Postgres', () => {
  test('its superuser password is random per data dir, in a mode-600 file beside it, and no other password logs in', async () => {
    const a = await start({ dataDir: path.join(folder, 'a') });
    const b = await start({ dataDir: path.join(folder, 'b') });
    const password = fs.readFileSync(path.join(folder, 'a-password'), 'utf8').trim();
    expect(password).toHaveLength(32);
    expect(password).not.toBe(fs.readFileSync(path.join(folder, 'b-password'), 'utf8').trim());
    expect(fs.statSync(path.join(folder, 'a-password')).mode & 0o777).toBe(0o600);
    expect(a.url).toContain(password);
    await expect(query(a.url, 'select 1')).resolves.toHaveLength(1);
    await expect(query(a.url, 'select 1', 'omniscrape')).rejects.toMatchObject({ code: '28P01' });
    await expect(query(b.url, 'select 1', password)).rejects.toMatchObject({ code: '28P01' });
  });

  test('a data dir without its password file does not start, and says which file to fill; with the password put back it starts', async () => {
    const dataDir = path.join(folder, 'no-password-file');
    const server = await start({ dataDir });
    const password = fs.readFileSync(`${dataDir}-password`, 'utf8');
    await server.stop();
    fs.rmSync(`${dataDir}-password`);

    const failure = await startEmbeddedPostgres({ dataDir, port: server.port, persistent: true }).catch(
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(StartupFailure);
    expect((failure as Error).message).toBe(
      `the embedded Postgres in ${dataDir} has no password in ${dataDir}-password: put its superuser's password there (one line, mode 600)`,
    );
    expect(fs.existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);

    fs.writeFileSync(`${dataDir}-password`, password, { mode: 0o600 });
    const again = await start({ dataDir, port: server.port });
    await expect(query(again.url, 'select 1')).resolves.toHaveLength(1);
  });

  test('crash() kills the server and all its processes at once; start() recovers the data', async () => {
    const server = await start({ dataDir: path.join(folder, 'crash') });
    await query(server.url, 'create table kept (n int); insert into kept values (1)');
    const pid = Number(fs.readFileSync(path.join(server.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    await server.crash();
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    await server.start();
    await expect(query(server.url, 'select n from kept')).resolves.toEqual([{ n: 1 }]);
  });

  test('stop({ mode }) stops the server in each mode, and it starts again', async () => {
    const server = await start({ dataDir: path.join(folder, 'modes') });
    for (const mode of ['smart', 'fast', 'immediate'] as const) {
      await server.stop({ mode });
      await expect(query(server.url, 'select 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      await server.start();
      await expect(query(server.url, 'select 1')).resolves.toHaveLength(1);
    }
  });

  rootOnly(
    'as root, a data dir inside a private (700) directory is placed where the postgres user can reach it, and found there again',
    async () => {
      const privateDir = fs.mkdtempSync(path.join(folder, 'private-'));
      fs.chmodSync(privateDir, 0o700);
      const relocationDir = path.join(folder, 'relocated');
      const lines: string[] = [];
      const requested = path.join(privateDir, '.data', 'postgres');
      const server = await start({ dataDir: requested, relocationDir, onLog: (line) => lines.push(line) });
      expect(server.dataDir.startsWith(path.join(relocationDir, 'data') + path.sep)).toBe(true);
      expect(
        lines.some((line) => line.includes(`keeps its data for ${requested} in ${server.dataDir}`)),
      ).toBe(true);
      expect(fs.statSync(path.join(relocationDir, 'data')).uid).toBe(0);
      await query(server.url, 'create table kept (n int)');
      // The password stays with the checkout, in the private directory.
      expect(fs.existsSync(`${requested}-password`)).toBe(true);
      await server.stop();

      const again = await start({ dataDir: requested, relocationDir, port: server.port });
      expect(again.dataDir).toBe(server.dataDir);
      await expect(query(again.url, 'select count(*)::int as n from kept')).resolves.toEqual([{ n: 0 }]);
    },
  );

  rootOnly(
    'as root, binaries the postgres user cannot read are run from a root-owned copy, which is refused once others can write to it',
    async () => {
      const privateDir = fs.mkdtempSync(path.join(folder, 'private-binaries-'));
      fs.chmodSync(privateDir, 0o700);
      const packageNative = path.resolve(
        path.dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)),
        '..',
        'native',
      );
      const binariesDir = path.join(privateDir, 'native');
      execFileSync('cp', ['-al', packageNative, binariesDir]); // hard links: the same files, out of the postgres user's reach
      const relocationDir = path.join(folder, 'relocated-binaries');
      const dataDir = path.join(folder, 'copied-binaries');

      const server = await start({ dataDir, binariesDir, relocationDir });
      const executable = executableOf(server.dataDir);
      expect(executable.startsWith(relocationDir + path.sep)).toBe(true);
      await expect(query(server.url, 'select 1')).resolves.toHaveLength(1);
      await server.stop();
      servers.splice(servers.indexOf(server), 1);

      // Another user able to write into the copy could plant a binary that root then runs.
      const copy = path.dirname(path.dirname(executable));
      fs.chmodSync(path.join(copy, 'lib'), 0o777);
      const refused = startEmbeddedPostgres({
        dataDir,
        binariesDir,
        relocationDir,
        port: server.port,
        persistent: true,
      });
      await expect(refused).rejects.toBeInstanceOf(StartupFailure);
      await expect(refused).rejects.toMatchObject({ code: 'UNTRUSTED_COPY' });
    },
  );
});
