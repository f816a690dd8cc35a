import { isTerminal } from '../../src/contract/errors';
import { directDatabaseUrl, loadConfig, type Config, type Tuning } from '../../src/config';
import { migrateDatabase } from '../../src/admin/database-setup';
import { createLogger, type Logger } from '../../src/logger';
import { startService, type RunningService, type ServiceRoles } from '../../src/service';
import { checkAnswer } from './contract-check';
import { TEST_SECRETS_KEY } from './secrets-key';
import { createTestDatabase } from './database';
import { startTargetServer, type TargetServer } from './target-server';
import { waitFor } from './wait';

export const KEY_A = 'test-key-alpha-00001';
export const KEY_B = 'test-key-bravo-00002';

export interface TestService {
  baseUrl: string;
  databaseUrl: string;
  config: Config;
  running: RunningService;
  /** JSON request to the API with key A unless `key` says otherwise (null: no key). */
  call(
    method: string,
    path: string,
    body?: unknown,
    key?: string | null,
    extraHeaders?: Record<string, string>,
  ): Promise<{ status: number; headers: Headers; body: any }>;
  /** Plain SQL on the service's database, as an analyst would run it. */
  query(text: string, params?: unknown[]): Promise<any[]>;
  stop(): Promise<void>;
}

export interface TestServiceOptions {
  env?: Record<string, string>;
  /** Settings no environment variable reaches (shorter timings for a test). */
  tuning?: Partial<Tuning>;
  roles?: ServiceRoles;
  databaseUrl?: string;
  /** The service's logger (a test reading its lines passes capturingLogger's); else per OMNISCRAPE_LOG_LEVEL. */
  logger?: Logger;
}

/** The whole service in this process, on a fresh database, with keys A and B provisioned. */
export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  const database = options.databaseUrl ? undefined : await createTestDatabase();
  const databaseUrl = options.databaseUrl ?? database!.url;
  const config = loadConfig(
    {
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      OMNISCRAPE_API_KEYS: `alpha:${KEY_A},bravo:${KEY_B}`,
      OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true',
      OMNISCRAPE_LOG_LEVEL: process.env.OMNISCRAPE_TEST_LOG_LEVEL ?? 'silent',
      OMNISCRAPE_SHUTDOWN_GRACE_SECONDS: '5',
      OMNISCRAPE_SECRETS_KEY: TEST_SECRETS_KEY,
      ...options.env,
    },
    options.tuning,
  );
  const logger = options.logger ?? createLogger(config);
  // What `omniscrape migrate` (or serve's start) does first, never through a pooler: the service
  // itself runs no DDL.
  await migrateDatabase(config, directDatabaseUrl(config, databaseUrl), logger);
  const running = await startService(
    config,
    databaseUrl,
    options.roles ?? { api: true, worker: true },
    logger,
  );
  const baseUrl = `http://127.0.0.1:${running.port}`;
  return {
    baseUrl,
    databaseUrl,
    config,
    running,
    async call(method, path, body, key = KEY_A, extraHeaders = {}) {
      const headers: Record<string, string> = { ...extraHeaders };
      if (key !== null) headers['x-api-key'] = key;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: the test will say so
      }
      checkAnswer(method, path, res.status, res.headers, parsed);
      return { status: res.status, headers: res.headers, body: parsed };
    },
    async query(text, params = []) {
      return (await running.context.store.pool.query(text, params)).rows;
    },
    async stop() {
      await running.stop();
      await database?.drop();
    },
  };
}

/** Polls GET /v1/jobs/{id} until `until` holds (default: a terminal status) or the time runs out. */
export async function waitForJob(
  service: TestService,
  jobId: string,
  until: (data: any) => boolean = (d) => isTerminal(d.status),
  timeoutMs = 30_000,
  key: string = KEY_A,
): Promise<any> {
  let last: any;
  return waitFor(
    async () => {
      const res = await service.call('GET', `/v1/jobs/${jobId}`, undefined, key);
      last = res.body;
      return res.status === 200 && until(res.body.data) && res.body.data;
    },
    {
      what: () => `job ${jobId} to reach the expected state; last answer ${JSON.stringify(last)}`,
      timeoutMs,
      intervalMs: 50,
    },
  );
}

/**
 * Starts a target server and the service before a file's tests and stops both after them. The
 * returned object's fields are filled in by `beforeAll`.
 */
export function useServiceAndTarget(options: TestServiceOptions = {}): {
  service: TestService;
  target: TargetServer;
} {
  const env = {} as { service: TestService; target: TargetServer };
  beforeAll(async () => {
    env.target = await startTargetServer();
    env.service = await startTestService(options);
  });
  afterAll(async () => {
    await env.service?.stop();
    await env.target?.close();
  });
  return env;
}
