import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { peakRssBytes, stopChild } from '../test/helpers/child-processes';
import { freePort } from '../test/helpers/free-port';

const ROOT = path.resolve(__dirname, '../..');
export const CLI = path.join(ROOT, 'dist/src/cli/index.js');
const BULLMQ_GATEWAY = path.join(ROOT, 'dist/bench/bullmq-gateway.js');

export interface Child {
  process: ChildProcess;
  baseUrl: string;
  /** Peak resident memory so far, from /proc (VmHWM), in MiB. */
  peakRssMb(): number;
  stop(): Promise<void>;
}

function watch(child: ChildProcess, ready: RegExp, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (d: Buffer) => {
      output = (output + d.toString()).slice(-64 * 1024);
      const match = ready.exec(output);
      if (!match) return;
      // Ready: stop collecting (the streams keep flowing, so the child never blocks on a full pipe).
      child.stdout!.off('data', onData);
      child.stderr!.off('data', onData);
      child.stdout!.resume();
      resolve(match[1] ?? '');
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`${what} exited (${code}) before it was ready:\n${output.slice(-2000)}`)),
    );
  });
}

/**
 * Copies a child's stderr into the bench's. Written chunk by chunk rather than piped: a pipe adds
 * listeners to process.stderr per child, and the idle scenario runs a dozen children at once.
 */
function showErrors(child: ChildProcess): void {
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
}

/** Peak RSS in MiB, or 0 once the process is gone. */
function peakRss(pid: number | undefined): number {
  try {
    return peakRssBytes(pid) / 2 ** 20;
  } catch {
    return 0;
  }
}

/**
 * The gateway in a child process, on the given Postgres: `omniscrape serve` (API and workers), or
 * `omniscrape api` alone.
 */
export async function startGateway(
  databaseUrl: string,
  env: Record<string, string>,
  nodeFlags: string[] = [],
  role: 'serve' | 'api' = 'serve',
): Promise<Child> {
  const port = await freePort();
  // `api` runs no DDL: a fresh database is migrated first, as a deploy would (`serve` does it itself).
  if (role === 'api') migrate(databaseUrl);
  const child = spawn(process.execPath, [...nodeFlags, CLI, role], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      OMNISCRAPE_LOG_LEVEL: 'warn',
      OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  showErrors(child); // warnings and errors of the gateway show in the bench output
  const ready = watch(child, /"msg":"omniscrape started"()/, 'omniscrape serve');
  // serve logs its start at info; ask /readyz instead when the log level hides it
  const started = await Promise.race([ready, pollReady(`http://127.0.0.1:${port}/readyz`)]);
  void started;
  return {
    process: child,
    baseUrl: `http://127.0.0.1:${port}`,
    peakRssMb: () => peakRss(child.pid),
    stop: () => stopChild(child),
  };
}

/** `omniscrape migrate` to completion; throws with its output when it fails. */
function migrate(databaseUrl: string): void {
  const result = spawnSync(process.execPath, [CLI, 'migrate'], {
    env: { ...process.env, DATABASE_URL: databaseUrl, OMNISCRAPE_LOG_LEVEL: 'warn' },
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`omniscrape migrate failed:\n${result.stderr}${result.stdout}`);
}

/** `omniscrape worker` in a child process: the scrape workers alone, with no HTTP port. */
export async function startWorker(
  databaseUrl: string,
  env: Record<string, string>,
  nodeFlags: string[] = [],
): Promise<Child> {
  const child = spawn(process.execPath, [...nodeFlags, CLI, 'worker'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true',
      ...env,
      OMNISCRAPE_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  showErrors(child);
  await watch(child, /"msg":"omniscrape started"()/, 'omniscrape worker');
  return { process: child, baseUrl: '', peakRssMb: () => peakRss(child.pid), stop: () => stopChild(child) };
}

async function pollReady(url: string): Promise<string> {
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(url)).ok) return '';
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never became ready`);
}

/** Where the BullMQ baseline keeps its queue: a Redis server's port, or a Postgres database (BullMQ's own Postgres backend). */
export type BullmqStore = { redisPort: number } | { postgresUrl: string };

/** The BullMQ baseline gateway in a child process, on Redis or on Postgres. */
export async function startBullmqGateway(
  store: BullmqStore,
  env: Record<string, string>,
  nodeFlags: string[] = [],
): Promise<Child> {
  const storeEnv =
    'redisPort' in store
      ? { REDIS_PORT: String(store.redisPort) }
      : { BULLMQ_POSTGRES_URL: store.postgresUrl };
  const child = spawn(process.execPath, [...nodeFlags, BULLMQ_GATEWAY], {
    env: { ...process.env, ...storeEnv, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const port = await watch(child, /listening (\d+)/, 'BullMQ gateway');
  return {
    process: child,
    baseUrl: `http://127.0.0.1:${port}`,
    peakRssMb: () => peakRss(child.pid),
    stop: () => stopChild(child),
  };
}

/** Debian's redis-server on a free loopback port, with its data in a temporary folder. */
export async function startRedis(): Promise<{
  port: number;
  version: string;
  /** redis-server's process id, for its CPU counters. */
  pid: number;
  stop(): Promise<void>;
}> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-redis-'));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  await watch(child, /Ready to accept connections()/, 'redis-server');
  const version = await new Promise<string>((resolve) => {
    const v = spawn('redis-server', ['--version']);
    let out = '';
    v.stdout.on('data', (d) => (out += d));
    v.on('close', () => resolve(/v=([\d.]+)/.exec(out)?.[1] ?? 'unknown'));
  });
  return {
    port,
    version,
    pid: child.pid!,
    async stop() {
      await stopChild(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
