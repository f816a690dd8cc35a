import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { listenHost, loadConfig } from '../src/config';
import { spawnCli } from './helpers/cli';
import { freePort } from './helpers/free-port';

/** A running `serve` in local mode (no DATABASE_URL), once its banner is printed. */
interface LocalServe {
  child: ChildProcess;
  stdout: string;
  stop(): Promise<void>;
}

async function startLocalServe(env: Record<string, string>): Promise<LocalServe> {
  const child = spawnCli(['serve'], { DATABASE_URL: '', HOST: '', ...env });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGINT');
    expect(await exited).toBe(0);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', () => /API key: .*\n/.test(stdout) && resolve());
      void exited.then(() => reject(new Error(`serve exited: ${stderr}`)));
    });
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  return { child, stdout, stop };
}

/** Whether another program can listen on host:port (it cannot when the API holds every interface). */
async function canListen(host: string, port: number): Promise<boolean> {
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

let folder: string;
beforeAll(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-local-mode-'));
  fs.chmodSync(folder, 0o755); // as root, the postgres user must enter it to reach the data dir in place
});
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

describe('local mode (`npm start` with no DATABASE_URL)', () => {
  test('listens on 127.0.0.1 alone, and prints where its key is kept, not the key', async () => {
    const dataDir = path.join(folder, 'data');
    const port = await freePort();
    const env = {
      OMNISCRAPE_DATA_DIR: dataDir,
      PORT: String(port),
      OMNISCRAPE_EMBEDDED_PG_PORT: String(await freePort()),
    };
    const serve = await startLocalServe(env);
    try {
      const keyFile = path.join(dataDir, 'local-api-key');
      const key = fs.readFileSync(keyFile, 'utf8').trim();
      expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
      expect(serve.stdout).not.toContain(key);
      expect(serve.stdout).toContain(`export KEY=$(cat ${keyFile})`);
      expect(serve.stdout).toContain(`API:          http://127.0.0.1:${port}`);
      // Bound to 127.0.0.1 only: another address of the machine leaves the port free.
      expect(await canListen('127.0.0.2', port)).toBe(true);
      // The key the file holds is the one the API takes.
      const res = await fetch(`http://127.0.0.1:${port}/v1/jobs`, { headers: { 'x-api-key': key } });
      expect(res.status).toBe(200);
    } finally {
      await serve.stop();
    }

    // HOST says otherwise: it listens there instead.
    const again = await startLocalServe({ ...env, HOST: '127.0.0.2' });
    try {
      expect(again.stdout).toContain(`API:          http://127.0.0.2:${port}`);
      expect(await canListen('127.0.0.1', port)).toBe(true);
      expect((await fetch(`http://127.0.0.2:${port}/healthz`)).status).toBe(200);
    } finally {
      await again.stop();
    }
    // Two starts of an embedded Postgres, the first with initdb: slow on a busy machine.
  }, 180_000);

  test('HOST unset: local mode keeps to this machine, every other start listens on every interface', () => {
    const unset = loadConfig({});
    expect(listenHost(unset, true)).toBe('127.0.0.1');
    expect(listenHost(unset, false)).toBe('0.0.0.0');
    const set = loadConfig({ HOST: '::' });
    expect(listenHost(set, true)).toBe('::');
    expect(listenHost(set, false)).toBe('::');
  });
});
