import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { StartupFailure } from '../startup-failure';
import {
  ensureServerUser,
  firstDirBlocking,
  relocatedDataDir,
  RELOCATION_DIR_DEFAULT,
  rootOwnedBinariesCopy,
  treeUsableBy,
  type ServerUser,
} from './embedded-postgres-placement';

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

export type StopMode = 'smart' | 'fast' | 'immediate';

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

const USER = 'postgres';
const SIGNAL_OF: Record<StopMode, NodeJS.Signals> = {
  smart: 'SIGTERM',
  fast: 'SIGINT',
  immediate: 'SIGQUIT',
};
/** Crash recovery of a big WAL can take a while; a server silent for this long is given up on. */
const READY_TIMEOUT_MS = 5 * 60_000;

/**
 * Runs the Postgres binaries that the `embedded-postgres` package ships, bound to 127.0.0.1. It is
 * for local use and tests: production points DATABASE_URL at a managed server. Our own runner
 * rather than the package's class, which cannot run binaries from elsewhere, writes the password to
 * a world-readable file in /tmp, and can stop only with SIGINT.
 *
 * The superuser's password is random per data dir, in a mode-600 file; a data dir without one (made
 * before, with the old fixed password) gets a new one on its next start. As root the server runs
 * as the `postgres` user; binaries and data that user cannot reach are placed where it can.
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

  let password = readPassword(passwordFile);
  if (!isInitialised(dataDir)) {
    password = newPassword();
    await initialiseDataDir(binaries, dataDir, password, passwordFile, serverUser);
  } else if (!password) {
    removeStalePidFile(dataDir); // single-user mode, too, refuses to start over one
    password = newPassword();
    await setSuperuserPassword(binaries, dataDir, password, serverUser);
    writePrivateFile(passwordFile, password + '\n');
    log(`gave the embedded Postgres superuser a new random password, kept in ${passwordFile}`);
  }

  const url = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${options.port}/postgres`;
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

/**
 * The data dir to use as root. The one asked for when the `postgres` user can reach it; else one
 * under `relocationDir` (an empty one left by a failed start of an older version is removed). An
 * initialised data dir out of its reach is not moved: it may hold data, and moving is the owner's call.
 */
function placeDataDir(
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

function isInitialised(dataDir: string): boolean {
  return fs.existsSync(path.join(dataDir, 'PG_VERSION'));
}

function newPassword(): string {
  return randomBytes(24).toString('base64url'); // URL- and SQL-literal-safe characters only
}

function readPassword(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined; // no password file yet: the caller makes one
  }
}

/** Writes a file only its owner can read, whole or not at all (written beside it, then renamed). */
export function writePrivateFile(file: string, content: string): void {
  const staging = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(staging, content, { mode: 0o600 });
    fs.renameSync(staging, file);
  } catch (err) {
    fs.rmSync(staging, { force: true });
    throw new StartupFailure(
      `cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      'NOT_WRITABLE',
      { cause: err },
    );
  }
}

/**
 * initdb into a staging dir beside the data dir, renamed into place once whole: a failed or killed
 * initdb never leaves a half-made data dir that the next start would take for a real one. The
 * password goes to initdb in a file inside that staging dir (mode 700, the server user's own).
 */
async function initialiseDataDir(
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
      `--username=${USER}`,
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

/** Sets the superuser's password in single-user mode: no port is open, and the old password is not needed. */
async function setSuperuserPassword(
  binaries: string,
  dataDir: string,
  password: string,
  user: ServerUser | undefined,
): Promise<void> {
  const { code, output } = await runToEnd(
    path.join(binaries, 'bin', 'postgres'),
    ['--single', '-D', dataDir, '-c', 'lc_messages=C', 'postgres'],
    user,
    `ALTER ROLE ${USER} PASSWORD '${password}';\n`,
  );
  if (code !== 0 || /ERROR|FATAL/.test(output)) {
    // The server echoes a failed statement; the password in it must not reach the terminal or a log.
    const reason = lastLines(output.replaceAll(password, '…'), 2);
    throw new StartupFailure(
      `could not set a new password on the embedded Postgres in ${dataDir}: ${reason}`,
      'OTHER',
    );
  }
}

/** Connects once with the password file's password, so a stale file is reported now, by name. */
async function verifyLogin(url: string, passwordFile: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (err) {
    if ((err as { code?: string }).code === '28P01') {
      throw new StartupFailure(
        `the embedded Postgres refused the password in ${passwordFile}: delete that file and start again to set a new one`,
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

/**
 * A pid file whose process is gone, or is no Postgres (its pid reused after a reboot), is stale:
 * Postgres itself would refuse to start over the second kind. A live Postgres on this data dir
 * is another server, which must not be started over.
 */
function removeStalePidFile(dataDir: string): void {
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

function readOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined; // missing (or gone meanwhile): the callers treat that as "no such file"
  }
}

function spawnAs(
  command: string,
  args: string[],
  user: ServerUser | undefined,
  options: { detached?: boolean } = {},
): ChildProcess {
  return spawn(command, args, {
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
    // Relative paths, the cwd and the home directory must not matter to the server user.
    cwd: '/',
    env: { ...(user ? serverUserEnvironment(user) : process.env), LC_MESSAGES: 'C' },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
}

/**
 * What the server user's processes see of our environment: only what Postgres and its locale need.
 * Root's environment may hold secrets (cloud credentials, OMNISCRAPE_API_KEYS) that the `postgres`
 * user, and every database superuser through /proc, must not read.
 */
function serverUserEnvironment(user: ServerUser): NodeJS.ProcessEnv {
  const kept = Object.entries(process.env).filter(
    ([name]) => name === 'PATH' || name === 'LANG' || name === 'TZ' || name.startsWith('LC_'),
  );
  return { ...Object.fromEntries(kept), HOME: '/', USER: user.name, LOGNAME: user.name };
}

function runToEnd(
  command: string,
  args: string[],
  user: ServerUser | undefined,
  input = '',
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnAs(command, args, user);
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    child.on('error', (err) => reject(spawnFailure(command, err, user)));
    child.on('close', (code) => resolve({ code, output }));
    child.stdin!.end(input);
  });
}

function spawnFailure(command: string, err: Error, user: ServerUser | undefined): StartupFailure {
  const code = (err as NodeJS.ErrnoException).code;
  const who = user ? 'the postgres user' : 'this user';
  return new StartupFailure(
    `cannot run ${command} (${code ?? err.message}) as ${who}: is it installed and readable? (npm ci installs it)`,
    'OTHER',
    { cause: err },
  );
}

function lastLines(text: string, n: number): string {
  return (
    text
      .trim()
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .slice(-n)
      .join(' / ') || '(no output)'
  );
}

/** Servers still running when this process exits are asked to stop (fast), so none outlives it by mistake. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGINT');
});

/** One postmaster: started detached (a terminal's Ctrl-C reaches only us, and we stop it last, in order). */
class ServerProcess {
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();

  constructor(
    readonly binaries: string,
    readonly dataDir: string,
    readonly port: number,
    readonly flags: string[],
    readonly user: ServerUser | undefined,
    readonly log: (line: string) => void,
  ) {}

  async start(): Promise<void> {
    if (this.#child) return;
    const child = spawnAs(
      path.join(this.binaries, 'bin', 'postgres'),
      ['-D', this.dataDir, '-p', String(this.port), ...this.flags],
      this.user,
      { detached: true },
    );
    const recent: string[] = [];
    let partial = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        recent.push(line);
        if (recent.length > 40) recent.shift();
        this.log(line);
      }
    });
    child.stdout!.resume();
    let spawnError: Error | undefined;
    child.on('error', (err) => (spawnError = err));
    this.#exited = new Promise((resolve) => child.once('close', () => resolve()));
    this.#child = child;
    running.add(child);
    void this.#exited.then(() => {
      running.delete(child);
      if (this.#child === child) this.#child = undefined;
    });
    const ready = await this.#waitUntilReady(child);
    if (ready) return;
    if (this.#child === child) await this.kill();
    if (spawnError) throw spawnFailure(path.join(this.binaries, 'bin', 'postgres'), spawnError, this.user);
    throw this.#explainFailedStart(recent.concat(partial));
  }

  /** Ready when the pid file (ours) says so; false when the server exited first or took too long. */
  async #waitUntilReady(child: ChildProcess): Promise<boolean> {
    let exited = false;
    void this.#exited.then(() => (exited = true));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!exited && Date.now() < deadline) {
      const lines = readOrUndefined(path.join(this.dataDir, 'postmaster.pid'))?.split('\n');
      if (lines && Number(lines[0]) === child.pid && lines[7]?.trim() === 'ready') return true;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
  }

  #explainFailedStart(lines: string[]): StartupFailure {
    const text = lines.join('\n');
    if (/could not create any TCP\/IP sockets|Address already in use/.test(text)) {
      return new StartupFailure(
        `port ${this.port} on 127.0.0.1 is already in use, so the embedded Postgres cannot listen there`,
        'PORT_IN_USE',
      );
    }
    const pid = /lock file "postmaster.pid" already exists[\s\S]*?PID (\d+)/.exec(text)?.[1];
    if (pid)
      return new StartupFailure(
        `another Postgres (pid ${pid}) is already running on ${this.dataDir}: stop it first`,
        'DATA_DIR_IN_USE',
      );
    const fatal = lines.filter((line) => /FATAL|PANIC/.test(line)).pop();
    return new StartupFailure(
      `the embedded Postgres in ${this.dataDir} did not start: ${(fatal ?? lastLines(text, 1)).replace(/^.*?(FATAL|PANIC):\s*/, '')}`,
      'OTHER',
    );
  }

  async stop(mode: StopMode): Promise<void> {
    const child = this.#child;
    if (!child) return;
    child.kill(SIGNAL_OF[mode]);
    await this.#exited;
  }

  /** SIGKILL to the postmaster and every process it started (found by parent pid), then waits for all to go. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child?.pid) return;
    const pids = [child.pid, ...childPids(child.pid)];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone: what we wanted.
      }
    }
    await this.#exited;
    while (pids.some((pid) => !['gone', 'Z'].includes(processState(pid)))) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** A process's state and parent from /proc/<pid>/stat (Linux); its fields after the command, which is in parentheses and may hold spaces. */
function procStat(pid: number | string): { state: string; ppid: number } | undefined {
  const stat = readOrUndefined(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const [state = '', ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state, ppid: Number(ppid) };
}

function processState(pid: number): string {
  return procStat(pid)?.state ?? 'gone';
}

/** The pids whose parent is `parent`. */
function childPids(parent: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && procStat(entry)?.ppid === parent)
    .map(Number);
}
