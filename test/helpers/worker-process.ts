import type { ChildProcess } from 'node:child_process';
import { peakRssBytes, stopChild } from './child-processes';
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
  const child = spawnCli(['worker'], {
    DATABASE_URL: databaseUrl,
    OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true',
    ...env,
  });
  child.stdout!.resume();
  child.stderr!.pipe(process.stderr);
  return {
    child,
    peakRssBytes: () => peakRssBytes(child.pid),
    stop: () => stopChild(child),
  };
}
