import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../../src/postgres-server/embedded-postgres';
import { freePort } from './free-port';

/**
 * A throw-away cluster of Debian's packaged Postgres (package `postgresql-15`, installed by
 * scripts/packaged-postgres.sh), the build most teams and managed services run: unlike the
 * embedded build it has LLVM JIT, and it runs with its stock settings (fsync on, jit on) unless
 * `settings` says otherwise. Used where the embedded build would hide a difference (JIT) and by
 * the benchmark's stock-Postgres scenario. It runs through the same runner as the embedded
 * Postgres, pointed at Debian's binaries.
 */
export interface PackagedPostgres {
  url: string;
  version: string;
  /** The server's log so far (its stderr, one line each): auto_explain writes plans here. */
  log(): string;
  stop(): Promise<void>;
}

const INSTALL_HINT =
  'install it with `sh scripts/packaged-postgres.sh` (as root; Debian package postgresql-15)';

/** The folder (bin/ inside) of the newest packaged Postgres, or undefined when none is installed. */
export function packagedPostgresHome(): string | undefined {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root)
    ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'postgres')))
    : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  return newest ? path.join(root, newest) : undefined;
}

/** packagedPostgresHome, or an error saying how to install it. */
export function packagedPostgresBinaries(): string {
  const home = packagedPostgresHome();
  if (!home) throw new Error(`Debian's packaged Postgres is not installed: ${INSTALL_HINT}`);
  return home;
}

export async function startPackagedPostgres(
  settings: Record<string, string> = {},
): Promise<PackagedPostgres> {
  const home = packagedPostgresBinaries();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-pkgpg-'));
  fs.chmodSync(dir, 0o755); // as root, the postgres user must enter it to reach its data dir
  const dataDir = path.join(dir, 'data');
  const lines: string[] = [];
  try {
    const server = await startEmbeddedPostgres({
      dataDir,
      port: await freePort(),
      persistent: false,
      binariesDir: home,
      // Debian's build puts its socket in /var/run/postgresql, which a fresh machine may lack.
      settings: { unix_socket_directories: dataDir, ...settings },
      onLog: (line) => lines.push(line),
    });
    return {
      url: server.url,
      version: /PostgreSQL (\d+(\.\d+)?)/.exec(lines.join('\n'))?.[1] ?? path.basename(home),
      log: () => lines.join('\n'),
      async stop() {
        await server.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true }); // nothing of a failed start is left behind
    throw err;
  }
}
