import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './free-port';

/**
 * A throw-away cluster of Debian's packaged Postgres (package `postgresql-15`, installed by
 * scripts/packaged-postgres.sh), the build most teams and managed services run: unlike the
 * embedded build it has LLVM JIT, and it runs with its stock settings (fsync on, jit on) unless
 * `settings` says otherwise. Used where the embedded build would hide a difference (JIT) and by
 * the benchmark's stock-Postgres scenario.
 */
export interface PackagedPostgres {
  url: string;
  version: string;
  /** The server's log so far (stderr of the postmaster): auto_explain writes plans here. */
  log(): string;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;
const INSTALL_HINT = 'install it with `sh scripts/packaged-postgres.sh` (as root; Debian package postgresql-15)';

/** The bin folder of the newest packaged Postgres, or undefined when none is installed. */
export function packagedPostgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'postgres'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  return newest ? path.join(root, newest, 'bin') : undefined;
}

export async function startPackagedPostgres(settings: Record<string, string> = {}): Promise<PackagedPostgres> {
  const bin = packagedPostgresBin();
  if (!bin) throw new Error(`Debian's packaged Postgres is not installed: ${INSTALL_HINT}`);
  // Postgres refuses to run as root: as root, the cluster belongs to the package's `postgres` user.
  const owner = process.getuid?.() === 0 ? { uid: idOf('-u'), gid: idOf('-g') } : {};
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-pkgpg-'));
  fs.chmodSync(dir, 0o700);
  const password = randomBytes(18).toString('base64url');
  const passwordFile = path.join(dir, 'password');
  fs.writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
  if (owner.uid !== undefined) {
    fs.chownSync(dir, owner.uid, owner.gid!);
    fs.chownSync(passwordFile, owner.uid, owner.gid!);
  }
  const dataDir = path.join(dir, 'data');
  const port = await freePort();
  const flags = Object.entries({ listen_addresses: '127.0.0.1', unix_socket_directories: dir, max_connections: '200', ...settings }).flatMap(
    ([name, value]) => ['-c', `${name}=${value}`],
  );
  let server: ReturnType<typeof spawn> | undefined;
  let log = '';
  try {
    execFileSync(path.join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${passwordFile}`, '--no-instructions'], {
      ...owner,
      stdio: 'pipe',
    });
    const started = spawn(path.join(bin, 'postgres'), ['-D', dataDir, '-p', String(port), ...flags], { ...owner, stdio: ['ignore', 'ignore', 'pipe'] });
    server = started;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`packaged Postgres was not ready within ${READY_TIMEOUT_MS} ms:\n${log.slice(-2000)}`)), READY_TIMEOUT_MS);
      started.stderr!.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        if (log.includes('database system is ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      started.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`packaged Postgres exited (${code}) before it was ready:\n${log.slice(-2000)}`));
      });
    });
  } catch (err) {
    // Nothing of a failed start is left behind: the server (if it runs) and its folder.
    server?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const running = server;
  const version = /PostgreSQL (\d+(\.\d+)?)/.exec(log)?.[1] ?? path.basename(path.dirname(bin));
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    version,
    log: () => log,
    async stop() {
      if (running.exitCode === null && running.signalCode === null) {
        const exited = new Promise((resolve) => running.once('exit', resolve));
        running.kill('SIGINT'); // fast shutdown
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function idOf(flag: '-u' | '-g'): number {
  return Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
}
