import { z } from 'zod';

/**
 * Every setting the service reads, parsed once at start-up and passed down. Environment variables
 * are the interface scripts rely on; the README lists each of them with its default.
 */

export const RESULT_TTL_SECONDS_DEFAULT = 24 * 60 * 60;
export const PRICE_PER_SCRAPE_DEFAULT = 0.0035;
export const MAX_TARGET_BODY_BYTES_DEFAULT = 10 * 1024 * 1024;
export const WORKER_CONCURRENCY_DEFAULT = 20;
export const WORKER_BODY_BUDGET_MB_DEFAULT = 8;
export const HEARTBEAT_SECONDS_DEFAULT = 10;
export const SYNC_LEASE_SECONDS_DEFAULT = 6;
export const PURGE_BATCH_SIZE_DEFAULT = 1000;
export const PURGE_CRON_DEFAULT = '*/5 * * * *';
export const SHUTDOWN_GRACE_SECONDS_DEFAULT = 30;
export const DEFAULT_CONCURRENCY_DEFAULT = 25;
export const DEFAULT_MAX_QUEUED_DEFAULT = 10_000;

const booleanFromEnv = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const apiKeysFromEnv = z.string().transform((value, ctx) => {
  const keys: { name: string; key: string }[] = [];
  for (const entry of value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const separator = entry.indexOf(':');
    const name = entry.slice(0, separator).trim();
    const key = entry.slice(separator + 1).trim();
    if (separator <= 0 || !name || key.length < 8) {
      ctx.addIssue({
        code: 'custom',
        message: `entry "${name || entry.slice(0, 20)}" must be name:key with a key of 8+ characters`,
      });
      return z.NEVER;
    }
    keys.push({ name, key });
  }
  return keys;
});

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: z.string().url().optional(),
  OMNISCRAPE_API_KEYS: apiKeysFromEnv.default([]),
  OMNISCRAPE_ALLOW_PRIVATE_TARGETS: booleanFromEnv.default(false),
  OMNISCRAPE_RESULT_TTL_SECONDS: z.coerce.number().int().min(1).default(RESULT_TTL_SECONDS_DEFAULT),
  OMNISCRAPE_PRICE_PER_SCRAPE: z.coerce.number().min(0).default(PRICE_PER_SCRAPE_DEFAULT),
  OMNISCRAPE_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(MAX_TARGET_BODY_BYTES_DEFAULT),
  OMNISCRAPE_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(WORKER_CONCURRENCY_DEFAULT),
  OMNISCRAPE_WORKER_BODY_BUDGET_MB: z.coerce
    .number()
    .min(0.1)
    .max(65536)
    .default(WORKER_BODY_BUDGET_MB_DEFAULT),
  OMNISCRAPE_HEARTBEAT_SECONDS: z.coerce.number().int().min(10).max(600).default(HEARTBEAT_SECONDS_DEFAULT),
  OMNISCRAPE_SYNC_LEASE_SECONDS: z.coerce.number().min(3).max(600).default(SYNC_LEASE_SECONDS_DEFAULT),
  OMNISCRAPE_PURGE_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(PURGE_BATCH_SIZE_DEFAULT),
  OMNISCRAPE_PURGE_CRON: z.string().min(9).default(PURGE_CRON_DEFAULT),
  OMNISCRAPE_SHUTDOWN_GRACE_SECONDS: z.coerce
    .number()
    .min(0)
    .max(3600)
    .default(SHUTDOWN_GRACE_SECONDS_DEFAULT),
  OMNISCRAPE_DEFAULT_CONCURRENCY: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(DEFAULT_CONCURRENCY_DEFAULT),
  OMNISCRAPE_DEFAULT_MAX_QUEUED: z.coerce.number().int().min(1).default(DEFAULT_MAX_QUEUED_DEFAULT),
  OMNISCRAPE_DATA_DIR: z.string().min(1).default('.data'),
  OMNISCRAPE_EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).default(54329),
  OMNISCRAPE_LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info'),
});

export interface Config {
  port: number;
  host: string;
  /** Absent means: start an embedded Postgres (only `serve` and `npm start` do that). */
  databaseUrl: string | undefined;
  apiKeys: { name: string; key: string }[];
  allowPrivateTargets: boolean;
  resultTtlSeconds: number;
  pricePerScrape: number;
  maxTargetBodyBytes: number;
  workerConcurrency: number;
  /** Bytes of page bodies one worker process holds at once (MemoryBudget). */
  workerBodyBudgetBytes: number;
  heartbeatSeconds: number;
  /** A sync scrape's slot lease, renewed while the scrape runs (SyncScrapeLeases). */
  syncLeaseSeconds: number;
  purgeBatchSize: number;
  purgeCron: string;
  shutdownGraceSeconds: number;
  /** Scrapes a key may have processing at once (sync and async), unless the key sets its own. */
  defaultConcurrency: number;
  /** Jobs a key may have queued, unless the key sets its own. */
  defaultMaxQueued: number;
  dataDir: string;
  embeddedPostgresPort: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export class ConfigError extends Error {}

/** Reads the settings from an environment; throws a ConfigError that names every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid settings:\n  ${problems.join('\n  ')}`);
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    apiKeys: e.OMNISCRAPE_API_KEYS,
    allowPrivateTargets: e.OMNISCRAPE_ALLOW_PRIVATE_TARGETS,
    resultTtlSeconds: e.OMNISCRAPE_RESULT_TTL_SECONDS,
    pricePerScrape: e.OMNISCRAPE_PRICE_PER_SCRAPE,
    maxTargetBodyBytes: e.OMNISCRAPE_MAX_BODY_BYTES,
    workerConcurrency: e.OMNISCRAPE_WORKER_CONCURRENCY,
    workerBodyBudgetBytes: Math.round(e.OMNISCRAPE_WORKER_BODY_BUDGET_MB * 1024 * 1024),
    heartbeatSeconds: e.OMNISCRAPE_HEARTBEAT_SECONDS,
    syncLeaseSeconds: e.OMNISCRAPE_SYNC_LEASE_SECONDS,
    purgeBatchSize: e.OMNISCRAPE_PURGE_BATCH_SIZE,
    purgeCron: e.OMNISCRAPE_PURGE_CRON,
    shutdownGraceSeconds: e.OMNISCRAPE_SHUTDOWN_GRACE_SECONDS,
    defaultConcurrency: e.OMNISCRAPE_DEFAULT_CONCURRENCY,
    defaultMaxQueued: e.OMNISCRAPE_DEFAULT_MAX_QUEUED,
    dataDir: e.OMNISCRAPE_DATA_DIR,
    embeddedPostgresPort: e.OMNISCRAPE_EMBEDDED_PG_PORT,
    logLevel: e.OMNISCRAPE_LOG_LEVEL,
  };
}
