import type { ChildProcess } from 'node:child_process';
import { isTerminal } from '../../src/contract/errors';
import { stopChild } from './child-processes';
import { spawnCli } from './cli';
import { freePort } from './free-port';
import { waitFor } from './wait';

export interface RoleProcess {
  child: ChildProcess;
  /** What it wrote so far, stdout and stderr together (its logs at info level). */
  output(): string;
  /** Resolves once it logged its start; rejects if it exits first. */
  started: Promise<void>;
  stop(): Promise<void>;
}

/**
 * `omniscrape api|worker|serve …` in a child process with its logs at info level, collected (a test
 * waits on them: the start, a wait for migrations).
 */
export function startRole(args: string[], env: Record<string, string>): RoleProcess {
  const child = spawnCli(args, {
    OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true',
    OMNISCRAPE_LOG_LEVEL: 'info',
    ...env,
  });
  let output = '';
  const started = new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      output = (output + d.toString()).slice(-256 * 1024);
      if (output.includes('"msg":"omniscrape started"')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) =>
      reject(
        new Error(`omniscrape ${args.join(' ')} exited (${code}) before it started:\n${output.slice(-2000)}`),
      ),
    );
  });
  // A test that never awaits `started` (the process is expected to wait) must not fail on it.
  started.catch(() => undefined);
  return { child, output: () => output, started, stop: () => stopChild(child) };
}

export interface ApiProcess extends RoleProcess {
  baseUrl: string;
  /** JSON request with `key` in X-API-Key. */
  call(method: string, path: string, body: unknown, key: string): Promise<{ status: number; body: any }>;
}

/** `omniscrape api` on a free port of 127.0.0.1 (or `serve`); resolves once /readyz answers 200. */
export async function startApiRole(
  env: Record<string, string>,
  command: 'api' | 'serve' = 'api',
): Promise<ApiProcess> {
  const port = await freePort();
  const role = startRole([command], { PORT: String(port), HOST: '127.0.0.1', ...env });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await role.started;
    await waitFor(async () => (await fetch(`${baseUrl}/readyz`).catch(() => undefined))?.ok === true, {
      what: `omniscrape ${command} to be ready`,
      timeoutMs: 30_000,
      intervalMs: 100,
    });
  } catch (err) {
    await role.stop();
    throw err;
  }
  return {
    ...role,
    baseUrl,
    async call(method, path, body, key) {
      const res = await fetch(baseUrl + path, {
        method,
        headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text };
    },
  };
}

/**
 * `omniscrape worker` and `omniscrape api` side by side, as a deployment runs them; each is added
 * to `running` (for the test's teardown) as soon as it is spawned, and both have started.
 */
export async function startWorkerAndApi(
  env: Record<string, string>,
  running: RoleProcess[],
): Promise<{ worker: RoleProcess; api: ApiProcess }> {
  const worker = startRole(['worker'], env);
  running.push(worker);
  const api = await startApiRole(env);
  running.push(api);
  await worker.started;
  return { worker, api };
}

/** Polls GET /v1/jobs/{id} until the job ended; returns its data. */
export function jobEnded(api: ApiProcess, jobId: string, key: string, timeoutMs = 30_000): Promise<any> {
  let last: unknown;
  return waitFor(
    async () => {
      const res = await api.call('GET', `/v1/jobs/${jobId}`, undefined, key);
      last = res.body;
      const data = res.body?.data;
      return data && isTerminal(data.status) && data;
    },
    { what: () => `job ${jobId} to end; last answer ${JSON.stringify(last)}`, timeoutMs, intervalMs: 50 },
  );
}
