import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { spawnCli } from './cli';

export interface WorkerProcess {
  child: ChildProcess;
  /** Peak resident memory of the worker so far (VmHWM from /proc), in bytes. */
  peakRssBytes(): number;
  /** SIGTERM, then SIGKILL if it has not exited within 20 s. */
  stop(): Promise<void>;
}

/**
 * `omniscrape worker` in a child process on the given database, so its memory is its own and can
 * be read from /proc. Its stderr (warnings and errors at the default test log level) shows in the
 * test output.
 */
export function startWorkerProcess(databaseUrl: string, env: Record<string, string>): WorkerProcess {
  const child = spawnCli(['worker'], { DATABASE_URL: databaseUrl, OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true', ...env });
  child.stdout!.resume();
  child.stderr!.pipe(process.stderr);
  return {
    child,
    peakRssBytes: () => {
      const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
      if (kb === undefined) throw new Error(`no VmHWM in /proc/${child.pid}/status`);
      return Number(kb) * 1024;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
