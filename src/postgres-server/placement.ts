import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { StartupFailure } from '../startup-failure';

/**
 * Where the embedded Postgres's binaries and data can live when we are root. Postgres refuses to
 * run as root, so it runs as the `postgres` system user, who must be able to enter every directory
 * on the way to its binaries and its data. A clone in /root (mode 700) is out of its reach; so is
 * anything under a private directory. There the binaries are copied once, and the data dir is
 * placed, under a root-owned directory the `postgres` user can enter.
 */

/** The default home of what root relocates; root-owned, not writable by other users. */
export const RELOCATION_DIR_DEFAULT = '/var/lib/omniscrape';

export interface ServerUser {
  name: string;
  uid: number;
  gid: number;
}

/** The user the server runs as when we are root: `postgres`, created (as a system user) if missing. */
export function ensureServerUser(log: (line: string) => void): ServerUser {
  const ids = () => ({
    name: 'postgres',
    uid: Number(
      execFileSync('id', ['-u', 'postgres'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim(),
    ),
    gid: Number(
      execFileSync('id', ['-g', 'postgres'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim(),
    ),
  });
  try {
    return ids();
  } catch {
    // `id` fails only when there is no such user: create it below.
  }
  try {
    execFileSync('groupadd', ['-f', '--system', 'postgres'], { stdio: 'ignore' });
    execFileSync(
      'useradd',
      ['--system', '-g', 'postgres', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'],
      { stdio: 'ignore' },
    );
  } catch (err) {
    throw new StartupFailure(
      `Postgres will not run as root, and creating a \`postgres\` system user for it failed (${(err as Error).message}); create one (useradd --system postgres) or run as another user`,
      'OTHER',
      { cause: err },
    );
  }
  log('created the system user `postgres` to run the embedded Postgres (Postgres will not run as root)');
  return ids();
}

const SEARCH = 1;
const READ = 4;

/** Whether `user` has `bits` (of rwx: 4, 2, 1) on a file of this stat, by Linux's owner → group → other rule. */
function userMay(stat: fs.Stats, user: ServerUser, bits: number): boolean {
  const shift = stat.uid === user.uid ? 6 : stat.gid === user.gid ? 3 : 0;
  return ((stat.mode >> shift) & bits) === bits;
}

/**
 * The first directory on the way to `target` (from /, up to `target` itself if it exists) that
 * `user` cannot enter, or undefined. Node drops supplementary groups when it starts a process as
 * another user, so the user's primary group is the only group that counts.
 */
export function firstDirBlocking(target: string, user: ServerUser): string | undefined {
  const parts = path.resolve(target).split(path.sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const dir = path.sep + parts.slice(0, i).join(path.sep);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(dir);
    } catch {
      return undefined; // from here on it does not exist yet: we create it, searchable
    }
    if (!stat.isDirectory() || !userMay(stat, user, SEARCH)) return dir;
  }
  return undefined;
}

/** Whether `user` can enter `dir` and read everything in it (the binaries, libraries and share files). */
export function treeUsableBy(dir: string, user: ServerUser): boolean {
  if (firstDirBlocking(dir, user) !== undefined) return false;
  const walk = (current: string): boolean => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isSymbolicLink()) continue; // its target is checked as an entry of its own
      const stat = fs.statSync(full);
      if (entry.isDirectory()) {
        if (!userMay(stat, user, READ | SEARCH) || !walk(full)) return false;
      } else if (!userMay(stat, user, READ)) return false;
    }
    return true;
  };
  return walk(dir);
}

/**
 * Throws unless every directory from / down to `dir` is owned by root and writable by no one else
 * (a world-writable directory with the sticky bit, like /tmp, is allowed on the way: no one else
 * can rename or remove root's entries in it). What root runs from there cannot have been planted.
 */
function assertRootOwnedPath(dir: string): void {
  const real = fs.realpathSync(dir);
  const parts = real.split(path.sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const current = path.sep + parts.slice(0, i).join(path.sep);
    const stat = fs.statSync(current);
    const writableByOthers = (stat.mode & 0o022) !== 0;
    const sticky = (stat.mode & 0o1000) !== 0;
    if (stat.uid !== 0 || (writableByOthers && !(sticky && i < parts.length))) {
      throw new StartupFailure(
        `${current} is not owned by root or is writable by other users, so the embedded Postgres will not run from ${dir}: remove ${real} (or fix its owner and mode) and start again`,
        'UNTRUSTED_COPY',
      );
    }
  }
}

/** Throws unless every entry under `dir` is root's and writable by no one else; symlinks must stay inside. */
function assertRootOwnedTree(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    const stat = fs.lstatSync(full);
    const untrusted = entry.isSymbolicLink()
      ? stat.uid !== 0 || fs.readlinkSync(full).includes('/')
      : stat.uid !== 0 || (stat.mode & 0o022) !== 0;
    if (untrusted) {
      throw new StartupFailure(
        `${full} is not owned by root or is writable by other users: remove ${dir} and start again (it is copied anew)`,
        'UNTRUSTED_COPY',
      );
    }
    if (entry.isDirectory()) assertRootOwnedTree(full);
  }
}

/** Creates `dir` (and its parents) as root with mode 755 if missing, then checks the path can be trusted. */
function ensureRootOwnedDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new StartupFailure(
      `cannot create ${dir} (${(err as NodeJS.ErrnoException).code}) to hold what the \`postgres\` user cannot reach in a private directory: clone into a directory it can enter, or set DATABASE_URL`,
      'NOT_WRITABLE',
      { cause: err },
    );
  }
  assertRootOwnedPath(dir);
}

/**
 * A root-owned copy of the binaries tree (bin/, lib/, share/) under `relocationDir`, made once and
 * shared by every checkout of the same version. Made beside its final name and renamed into place,
 * so a copy that is there is whole; checked for owner and mode before each use.
 */
export function rootOwnedBinariesCopy(binariesDir: string, relocationDir: string): string {
  const version =
    readPackageVersion(binariesDir) ??
    createHash('sha256').update(fs.realpathSync(binariesDir)).digest('hex').slice(0, 16);
  ensureRootOwnedDir(relocationDir);
  const target = path.join(relocationDir, `postgres-${version}-${process.platform}-${process.arch}`);
  if (!fs.existsSync(target)) {
    const staging = `${target}.copying-${randomBytes(4).toString('hex')}`;
    try {
      fs.cpSync(binariesDir, staging, { recursive: true, verbatimSymlinks: true });
      normaliseModes(staging);
      fs.renameSync(staging, target);
    } catch (err) {
      fs.rmSync(staging, { recursive: true, force: true });
      // Another start made the same copy at the same moment: use theirs (checked below).
      if (!fs.existsSync(target))
        throw new StartupFailure(
          `cannot copy the Postgres binaries to ${target}: ${(err as Error).message}`,
          'NOT_WRITABLE',
          { cause: err },
        );
    }
  }
  assertRootOwnedPath(target);
  assertRootOwnedTree(target);
  return target;
}

/** Directories 755, files 755 if executable else 644: whatever root's umask was, postgres can read them and no one else can write. */
function normaliseModes(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) {
      fs.chmodSync(full, 0o755);
      normaliseModes(full);
    } else {
      fs.chmodSync(full, fs.statSync(full).mode & 0o111 ? 0o755 : 0o644);
    }
  }
  fs.chmodSync(dir, 0o755);
}

function readPackageVersion(binariesDir: string): string | undefined {
  try {
    const { version } = JSON.parse(fs.readFileSync(path.join(binariesDir, '..', 'package.json'), 'utf8')) as {
      version?: unknown;
    };
    return typeof version === 'string' && /^[\w.+-]+$/.test(version) ? version : undefined;
  } catch {
    return undefined; // a binaries tree outside its package: named by its path instead
  }
}

/**
 * The data dir root keeps for a data dir the `postgres` user cannot reach: under `relocationDir`,
 * named after a hash of the requested path, so each checkout (or each OMNISCRAPE_DATA_DIR) keeps its
 * own, found again on every start from the same path.
 */
export function relocatedDataDir(requested: string, relocationDir: string): string {
  const parent = path.join(relocationDir, 'data');
  ensureRootOwnedDir(parent);
  const hash = createHash('sha256').update(path.resolve(requested)).digest('hex').slice(0, 16);
  return path.join(parent, `pgdata-${hash}`);
}
