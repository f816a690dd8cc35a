import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { StartupFailure } from '../startup-failure';
import type { ServerUser } from './placement';
import { readOrUndefined } from './private-files';

// The embedded server's processes: the postmaster (started, awaited, stopped, killed) and the
// one-off programs (initdb, single-user mode), run as the server user when we are root.

export type StopMode = 'smart' | 'fast' | 'immediate';

const SIGNAL_OF: Record<StopMode, NodeJS.Signals> = {
  smart: 'SIGTERM',
  fast: 'SIGINT',
  immediate: 'SIGQUIT',
};
/** Crash recovery of a big WAL can take a while; a server silent for this long is given up on. */
const READY_TIMEOUT_MS = 5 * 60_000;

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

export function runToEnd(
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

export function lastLines(text: string, n: number): string {
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
export class ServerProcess {
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
