import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { finished, type Finished } from './child-processes';
import { TEST_SECRETS_KEY } from './secrets-key';

export const CLI = path.resolve(__dirname, '../../dist/src/cli/index.js');

/** Runs the built `omniscrape` CLI to completion (npm test builds it before Jest starts). */
export function runCli(args: string[], env: Record<string, string>): Promise<Finished> {
  return finished(
    spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, OMNISCRAPE_LOG_LEVEL: 'warn', OMNISCRAPE_SECRETS_KEY: TEST_SECRETS_KEY, ...env },
    }),
  );
}

/** Starts a long-running CLI role (`worker`, `api`, `serve`) in a child process. */
export function spawnCli(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, OMNISCRAPE_LOG_LEVEL: 'warn', OMNISCRAPE_SECRETS_KEY: TEST_SECRETS_KEY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
