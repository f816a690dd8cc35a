import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StartupFailure } from '../startup-failure';
import { firstDirBlocking, relocatedDataDir, type ServerUser } from './placement';
import { readOrUndefined, writePrivateFile } from './private-files';
import { lastLines, runToEnd } from './server-process';

// The embedded server's data dir and its superuser's password: where the data dir goes, how it is
// made (initdb, which sets the password), and what a stale pid file in it is.

/** The superuser initdb creates, whom the service connects as. */
export const SUPERUSER = 'postgres';

/**
 * The data dir to use as root. The one asked for when the `postgres` user can reach it; else one
 * under `relocationDir` (an empty directory at the one asked for is removed: it holds no data). An
 * initialised data dir out of its reach is not moved: it may hold data, and moving is the owner's call.
 */
export function placeDataDir(
  requested: string,
  user: ServerUser,
  relocationDir: string,
  log: (line: string) => void,
): string {
  try {
    // Made first, so a parent that root's umask made private counts as blocking below.
    fs.mkdirSync(path.dirname(requested), { recursive: true });
  } catch (err) {
    throw new StartupFailure(
      `cannot create ${path.dirname(requested)} (${(err as NodeJS.ErrnoException).code})`,
      'NOT_WRITABLE',
      { cause: err },
    );
  }
  const blocking = firstDirBlocking(path.dirname(requested), user);
  if (blocking === undefined) return requested;
  if (isInitialised(requested)) {
    throw new StartupFailure(
      `the postgres user cannot enter ${blocking}, so the embedded Postgres cannot use its data in ${requested}: allow it in (chmod o+x ${blocking}) or move that data dir elsewhere`,
      'UNREACHABLE_FOR_SERVER_USER',
    );
  }
  try {
    fs.rmdirSync(requested);
  } catch {
    // Not there, or not empty (then initdb into it would fail anyway): nothing to tidy.
  }
  const placed = relocatedDataDir(requested, relocationDir);
  log(
    `the postgres user cannot enter ${blocking}; the embedded Postgres keeps its data for ${requested} in ${placed} instead`,
  );
  return placed;
}

export function isInitialised(dataDir: string): boolean {
  return fs.existsSync(path.join(dataDir, 'PG_VERSION'));
}

export function newPassword(): string {
  return randomBytes(24).toString('base64url'); // URL- and SQL-literal-safe characters only
}

export function readPassword(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined; // no password file yet: the caller makes one
  }
}

/**
 * initdb into a staging dir beside the data dir, renamed into place once whole: a failed or killed
 * initdb never leaves a half-made data dir that the next start would take for a real one. The
 * password goes to initdb in a file inside that staging dir (mode 700, the server user's own).
 */
export async function initialiseDataDir(
  binaries: string,
  dataDir: string,
  password: string,
  passwordFile: string,
  user: ServerUser | undefined,
): Promise<void> {
  const staging = `${dataDir}.initdb-${randomBytes(4).toString('hex')}`;
  try {
    fs.mkdirSync(path.dirname(dataDir), { recursive: true });
    fs.mkdirSync(staging, { mode: 0o700 });
  } catch (err) {
    throw new StartupFailure(
      `cannot create the embedded Postgres data dir in ${path.dirname(dataDir)} (${(err as NodeJS.ErrnoException).code})`,
      'NOT_WRITABLE',
      { cause: err },
    );
  }
  try {
    const pwfile = path.join(staging, 'pwfile');
    // `wx` and lchown: the data dir's parent may be writable by others (a shared /tmp folder), so
    // nothing here may follow a link planted in the moment since the staging dir was made.
    fs.writeFileSync(pwfile, password + '\n', { mode: 0o600, flag: 'wx' });
    if (user) {
      fs.lchownSync(staging, user.uid, user.gid);
      fs.lchownSync(pwfile, user.uid, user.gid);
    }
    const pgdata = path.join(staging, 'pgdata');
    const args = [
      `--pgdata=${pgdata}`,
      '--auth=scram-sha-256',
      `--username=${SUPERUSER}`,
      `--pwfile=${pwfile}`,
      '--encoding=UTF8',
      '--no-locale',
      '--no-instructions',
    ];
    const { code, output } = await runToEnd(path.join(binaries, 'bin', 'initdb'), args, user);
    if (code !== 0)
      throw new StartupFailure(`initdb failed (exit ${code}): ${lastLines(output, 2)}`, 'OTHER');
    writePrivateFile(passwordFile, password + '\n');
    fs.renameSync(pgdata, dataDir);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * A pid file whose process is gone, or is no Postgres (its pid reused after a reboot), is stale:
 * Postgres itself would refuse to start over the second kind. A live Postgres on this data dir
 * is another server, which must not be started over.
 */
export function removeStalePidFile(dataDir: string): void {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const content = readOrUndefined(pidFile);
  if (!content) return;
  const pid = Number(content.split('\n')[0]);
  const command = pid > 0 ? readOrUndefined(`/proc/${pid}/comm`)?.trim() : undefined;
  if (command === 'postgres') {
    throw new StartupFailure(
      `another Postgres (pid ${pid}) is already running on ${dataDir}: stop it (or the omniscrape that started it) first`,
      'DATA_DIR_IN_USE',
    );
  }
  fs.rmSync(pidFile, { force: true });
}
