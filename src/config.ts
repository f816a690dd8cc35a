import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { parseSecretsKey } from './sealed-secrets';

/*
 * Every setting the service reads, parsed once at start-up and passed down. The table below is the
 * one place a setting is declared: its Config field (with its meaning, on the field), the
 * environment variable it is read from, and its type, bounds and default. `Config` is derived from
 * it. Environment variables are the interface scripts rely on; docs/operations.md lists each of them
 * with its default (test/config.test.ts keeps the two in step).
 */

const booleanFromEnv = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

/**
 * Shortest key OMNISCRAPE_API_KEYS may give: operators choose these keys, and a short one could be
 * guessed (generated keys are 36 characters: `osk_` and 24 random bytes in base64url).
 */
export const MIN_PROVISIONED_KEY_LENGTH = 20;

const apiKeysFromEnv = z.string().transform((value, ctx) => {
  const keys: { name: string; key: string }[] = [];
  for (const entry of value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const separator = entry.indexOf(':');
    const name = entry.slice(0, separator).trim();
    const key = entry.slice(separator + 1).trim();
    if (separator <= 0 || !name || key.length < MIN_PROVISIONED_KEY_LENGTH) {
      ctx.addIssue({
        code: 'custom',
        message: `entry "${name || entry.slice(0, 20)}" must be name:key with a key of ${MIN_PROVISIONED_KEY_LENGTH}+ characters`,
      });
      return z.NEVER;
    }
    keys.push({ name, key });
  }
  return keys;
});

const secretsKeyFromEnv = z.string().transform((value, ctx) => {
  const key = parseSecretsKey(value);
  if (key) return key;
  ctx.addIssue({
    code: 'custom',
    message: 'must be 32 random bytes as 64 hex digits or base64 (make one: openssl rand -base64 32)',
  });
  return z.NEVER;
});

/**
 * One entry of OMNISCRAPE_BLOCKED_TARGETS, a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single
 * address, as its network's CIDR (`10.1.2.3/8` becomes `10.0.0.0/8`, `192.0.2.7` becomes
 * `192.0.2.7/32`); an IPv4-mapped IPv6 range (`::ffff:10.0.0.0/104`) becomes the IPv4 range it maps,
 * since the guard judges mapped addresses as IPv4. Undefined when the entry is none of these.
 */
function networkCidr(entry: string): string | undefined {
  const [address = '', prefixText, ...rest] = entry.split('/');
  const family = net.isIP(address);
  const bits = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? bits : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (family === 0 || address.includes('%') || rest.length > 0 || !(prefix >= 0 && prefix <= bits))
    return undefined;
  const parsed = ipaddr.parse(address);
  if (parsed instanceof ipaddr.IPv6 && parsed.isIPv4MappedAddress() && prefix >= 96) {
    const v4 = `${parsed.toIPv4Address().toString()}/${prefix - 96}`;
    return `${ipaddr.IPv4.networkAddressFromCIDR(v4).toString()}/${prefix - 96}`;
  }
  const kind = parsed instanceof ipaddr.IPv4 ? ipaddr.IPv4 : ipaddr.IPv6;
  return `${kind.networkAddressFromCIDR(`${parsed.toString()}/${prefix}`).toString()}/${prefix}`;
}

const addressRangesFromEnv = z.string().transform((value, ctx) => {
  const ranges: string[] = [];
  for (const entry of value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const cidr = networkCidr(entry);
    if (cidr === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `"${entry.slice(0, 60)}" is not an IPv4 or IPv6 address or CIDR range (e.g. 10.0.0.0/8, fd00::/8, 192.0.2.7)`,
      });
      return z.NEVER;
    }
    ranges.push(cidr);
  }
  return ranges;
});

/** A setting read from an environment variable; `schema` parses the variable's text. */
const fromEnv = <S extends z.ZodType>(env: string, schema: S) => ({ env, schema });
/**
 * A setting with no environment variable (a size or timing operators have not needed to change):
 * tests, or a program embedding the service, set it through loadConfig's `tuning` argument.
 */
const tunable = <S extends z.ZodType>(schema: S) => ({ env: undefined, schema });

/** Most connections one pool opens (docs/production-postgres.md, Connection budget, adds them up per role). */
const poolSize = z.coerce.number().int().min(1).max(1000);
/**
 * The most scrapes one worker process may run at once: each needs a socket (a file descriptor, so
 * `ulimit -n` must be above it) and tens of KB of memory while it waits (docs/performance.md).
 */
export const MAX_WORKER_CONCURRENCY = 10_000;

const settings = {
  /** API port. */
  port: fromEnv('PORT', z.coerce.number().int().min(0).max(65535).default(8080)),
  /**
   * API bind address (and OMNISCRAPE_METRICS_PORT's). Absent: this machine alone (127.0.0.1) in local
   * mode, every interface otherwise (listenHost).
   */
  host: fromEnv('HOST', z.string().min(1).optional()),
  /** Absent means: start an embedded Postgres (only `serve` and `npm start` do that). */
  databaseUrl: fromEnv('DATABASE_URL', z.string().url().optional()),
  /**
   * A direct connection to Postgres (not through a transaction-mode pooler such as PgBouncer) for
   * the work that needs one session: the LISTEN connections, migrations and the session lock of
   * their deferred steps. Absent means the connection DATABASE_URL names.
   */
  directDatabaseUrl: fromEnv('OMNISCRAPE_DIRECT_DATABASE_URL', z.string().url().optional()),
  /**
   * Whether the store runs its repeated statements as named prepared statements (PreparingClient).
   * Off for a transaction-mode pooler that cannot carry them from one transaction to the next
   * (PgBouncer before 1.21, or later without max_prepared_statements).
   */
  preparedStatements: fromEnv('OMNISCRAPE_PREPARED_STATEMENTS', booleanFromEnv.default(true)),
  /**
   * The owner role's URL, for what needs DDL: `omniscrape migrate`, and the migration step of
   * `serve`'s start. Absent means the direct connection (OMNISCRAPE_DIRECT_DATABASE_URL, else
   * DATABASE_URL or the embedded Postgres). `api` and `worker` never
   * use it: they run no DDL, so they can run as a role that may not create anything.
   */
  migrationDatabaseUrl: fromEnv('OMNISCRAPE_MIGRATION_DATABASE_URL', z.string().url().optional()),
  /**
   * Where the reporting reads (`omniscrape report`, the dashboard) go, typically a read replica;
   * absent means the main database. Job reads of the API never go here: they must see every commit.
   */
  reportingDatabaseUrl: fromEnv('OMNISCRAPE_REPORTING_DATABASE_URL', z.string().url().optional()),
  /** Keys provisioned at start-up (`name1:key1,name2:key2`; idempotent). */
  apiKeys: fromEnv('OMNISCRAPE_API_KEYS', apiKeysFromEnv.default([])),
  /**
   * The key (AES-256-GCM) that seals webhook signing secrets in the database (src/sealed-secrets.ts);
   * the database never holds it. Absent: local mode (`serve` without DATABASE_URL) makes one and
   * keeps it in OMNISCRAPE_DATA_DIR; elsewhere, deliveries to be signed with a key's secret fail
   * (recorded, retried) and a submission's own secret is stored as given.
   */
  secretsKey: fromEnv('OMNISCRAPE_SECRETS_KEY', secretsKeyFromEnv.optional()),
  /** Whether loopback and private addresses may be scraped (development, tests). */
  allowPrivateTargets: fromEnv('OMNISCRAPE_ALLOW_PRIVATE_TARGETS', booleanFromEnv.default(false)),
  /**
   * The operator's own blocked ranges (CIDRs), refused to scrapes and webhook deliveries on top of
   * the built-in ones, whatever OMNISCRAPE_ALLOW_PRIVATE_TARGETS says.
   */
  blockedTargets: fromEnv('OMNISCRAPE_BLOCKED_TARGETS', addressRangesFromEnv.default([])),
  /** How long a completed job's result is kept. */
  resultTtlSeconds: fromEnv(
    'OMNISCRAPE_RESULT_TTL_SECONDS',
    z.coerce
      .number()
      .int()
      .min(1)
      .default(24 * 60 * 60),
  ),
  /** `billing.charged` of a successful scrape. */
  pricePerScrape: fromEnv('OMNISCRAPE_PRICE_PER_SCRAPE', z.coerce.number().min(0).default(0.0035)),
  /** `billing.charged` of a successful scrape rendered in the browser (in place of the per-scrape price). */
  pricePerRender: fromEnv('OMNISCRAPE_PRICE_PER_RENDER', z.coerce.number().min(0).default(0.01)),
  /**
   * Pages one process renders in headless Chromium at once (workers, and the API for sync scrapes);
   * 0 turns the browser engine off: rendering is then refused (400) and `mode: "auto"` never renders.
   */
  browserConcurrency: fromEnv(
    'OMNISCRAPE_BROWSER_CONCURRENCY',
    z.coerce.number().int().min(0).max(64).default(2),
  ),
  /** The Chromium the browser engine launches (Debian's package `chromium` by default). */
  chromiumPath: fromEnv('OMNISCRAPE_CHROMIUM_PATH', z.string().min(1).default('/usr/bin/chromium')),
  /**
   * Chromium's own sandbox around its page processes. `auto`: on, unless the process runs as root
   * (Chromium refuses its sandbox to root).
   */
  browserSandbox: fromEnv(
    'OMNISCRAPE_BROWSER_SANDBOX',
    z
      .enum(['auto', 'true', 'false'])
      .default('auto')
      .transform((v) => (v === 'auto' ? process.getuid?.() !== 0 : v === 'true')),
  ),
  /** Cap on a target's decoded body. */
  maxTargetBodyBytes: fromEnv(
    'OMNISCRAPE_MAX_BODY_BYTES',
    z.coerce
      .number()
      .int()
      .min(1024)
      .default(10 * 1024 * 1024),
  ),
  /**
   * Scrapes one worker process runs at once. A scrape waiting on its target holds a socket and a
   * few KB of records (its claim, its request, its timers), not a pool connection: claims,
   * heartbeats and settles are batched, and page bodies share OMNISCRAPE_WORKER_BODY_BUDGET_MB.
   */
  workerConcurrency: fromEnv(
    'OMNISCRAPE_WORKER_CONCURRENCY',
    z.coerce.number().int().min(1).max(MAX_WORKER_CONCURRENCY).default(20),
  ),
  /** Bytes of page bodies one worker process holds at once (MemoryBudget); the variable is in MiB. */
  workerBodyBudgetBytes: fromEnv(
    'OMNISCRAPE_WORKER_BODY_BUDGET_MB',
    z.coerce
      .number()
      .min(0.1)
      .max(65536)
      .default(8)
      .transform((mib) => Math.round(mib * 1024 * 1024)),
  ),
  /** pg-boss heartbeat of a scrape job: a worker silent this long loses its job. */
  heartbeatSeconds: fromEnv(
    'OMNISCRAPE_HEARTBEAT_SECONDS',
    z.coerce.number().int().min(10).max(600).default(10),
  ),
  /** A sync scrape's slot lease, renewed while the scrape runs (SyncScrapeLeases). */
  syncLeaseSeconds: fromEnv('OMNISCRAPE_SYNC_LEASE_SECONDS', z.coerce.number().min(3).max(600).default(6)),
  /** Rows the result purge deletes per batch. */
  purgeBatchSize: fromEnv(
    'OMNISCRAPE_PURGE_BATCH_SIZE',
    z.coerce.number().int().min(1).max(100_000).default(1000),
  ),
  /**
   * How many days history rows are kept: older ones are deleted, their days' usage rolled up first
   * (maintenance/history-retention.ts).
   */
  historyDays: fromEnv('OMNISCRAPE_HISTORY_DAYS', z.coerce.number().int().min(1).max(36_500).default(90)),
  /** When the maintenance duties run (pg-boss cron, UTC). */
  purgeCron: fromEnv('OMNISCRAPE_PURGE_CRON', z.string().min(9).default('*/5 * * * *')),
  /**
   * Webhook deliveries one worker process sends at once (its pg-boss worker on the delivery queue,
   * apart from the scrape claim loop: a slow receiver ties up only these, never a scrape slot).
   */
  webhookConcurrency: fromEnv(
    'OMNISCRAPE_WEBHOOK_CONCURRENCY',
    z.coerce.number().int().min(1).max(100).default(8),
  ),
  /**
   * Of those, the most one key's deliveries take at once (pg-boss localGroupConcurrency: a key at
   * it is skipped when the worker fetches, so its backlog never holds a slot another key could use).
   * At most OMNISCRAPE_WEBHOOK_CONCURRENCY.
   */
  webhookConcurrencyPerKey: fromEnv(
    'OMNISCRAPE_WEBHOOK_CONCURRENCY_PER_KEY',
    z.coerce.number().int().min(1).max(100).default(2),
  ),
  /**
   * A delivery body longer than this (bytes) carries the job without its result, and says where to
   * fetch it (webhookBody in jobs/webhook-body.ts).
   */
  webhookMaxBodyBytes: fromEnv(
    'OMNISCRAPE_WEBHOOK_MAX_BODY_BYTES',
    z.coerce
      .number()
      .int()
      .min(4096)
      .max(64 * 1024 * 1024)
      .default(256 * 1024),
  ),
  /**
   * Failed deliveries in a row after which a receiver (a URL origin) is left alone for a while: its
   * deliveries wait without being sent (ReceiverBreaker in jobs/receiver-breaker.ts).
   */
  webhookBreakerFailures: fromEnv(
    'OMNISCRAPE_WEBHOOK_BREAKER_FAILURES',
    z.coerce.number().int().min(1).max(1000).default(5),
  ),
  /** Redeliveries (POST /v1/jobs/{id}/webhooks/redeliver) a key may ask for per minute, per API process. */
  redeliveriesPerMinute: fromEnv(
    'OMNISCRAPE_WEBHOOK_REDELIVERIES_PER_MINUTE',
    z.coerce.number().int().min(1).max(100_000).default(10),
  ),
  /** How long a stopping process lets in-flight scrapes finish. */
  shutdownGraceSeconds: fromEnv(
    'OMNISCRAPE_SHUTDOWN_GRACE_SECONDS',
    z.coerce.number().min(0).max(3600).default(30),
  ),
  /** Scrapes a key may have processing at once (sync and async), unless the key sets its own. */
  defaultConcurrency: fromEnv(
    'OMNISCRAPE_DEFAULT_CONCURRENCY',
    z.coerce.number().int().min(1).max(100_000).default(25),
  ),
  /** Jobs a key may have queued, unless the key sets its own. */
  defaultMaxQueued: fromEnv('OMNISCRAPE_DEFAULT_MAX_QUEUED', z.coerce.number().int().min(1).default(10_000)),
  /**
   * Requests one key may hold open in one API process at once: event streams of jobs and batches
   * and `?wait=` polls together (HeldRequests); more are answered 429 TOO_MANY_STREAMS.
   */
  maxStreamsPerKey: fromEnv(
    'OMNISCRAPE_MAX_STREAMS_PER_KEY',
    z.coerce.number().int().min(1).max(100_000).default(100),
  ),
  /** Requests one API process holds open at once, all keys together (streams and `?wait=` polls). */
  maxStreams: fromEnv('OMNISCRAPE_MAX_STREAMS', z.coerce.number().int().min(1).max(1_000_000).default(2_000)),
  /** Most requests one POST /v1/scrape/batch may carry. */
  maxBatch: fromEnv('OMNISCRAPE_MAX_BATCH', z.coerce.number().int().min(1).max(50_000).default(10_000)),
  /**
   * Bytes of request bodies one key may have being read, parsed and validated at once in this
   * process (BodyBudget; the variable is in MiB): two full batch bodies.
   */
  requestBodyBudgetPerKeyBytes: fromEnv(
    'OMNISCRAPE_REQUEST_BODY_BUDGET_PER_KEY_MB',
    z.coerce
      .number()
      .min(0.1)
      .max(65536)
      .default(64)
      .transform((mib) => Math.round(mib * 1024 * 1024)),
  ),
  /** Bytes of request bodies all keys together may have being read at once in this process (MiB). */
  requestBodyBudgetBytes: fromEnv(
    'OMNISCRAPE_REQUEST_BODY_BUDGET_MB',
    z.coerce
      .number()
      .min(0.1)
      .max(65536)
      .default(256)
      .transform((mib) => Math.round(mib * 1024 * 1024)),
  ),
  /**
   * Failed sign-ins (unknown X-API-Keys, wrong dashboard keys) one client address may make per
   * window; past them it is answered 429 without a lookup until the window ends.
   */
  signInFailureLimit: fromEnv(
    'OMNISCRAPE_SIGN_IN_FAILURES',
    z.coerce.number().int().min(1).max(1_000_000).default(10),
  ),
  /** The window of OMNISCRAPE_SIGN_IN_FAILURES, from an address's first failure. */
  signInWindowSeconds: fromEnv(
    'OMNISCRAPE_SIGN_IN_WINDOW_SECONDS',
    z.coerce.number().int().min(1).max(86_400).default(60),
  ),
  /** Where the embedded Postgres keeps its data, its password and the local API key. */
  dataDir: fromEnv('OMNISCRAPE_DATA_DIR', z.string().min(1).default('.data')),
  /** Port of the embedded Postgres (127.0.0.1 only). */
  embeddedPostgresPort: fromEnv(
    'OMNISCRAPE_EMBEDDED_PG_PORT',
    z.coerce.number().int().min(1).max(65535).default(54329),
  ),
  /**
   * omniscrape's own pool in a process serving the API (`api`, `serve`): requests, submissions,
   * sync scrapes, and in `serve` also its workers' claims, heartbeats and settles.
   */
  apiPoolSize: fromEnv('OMNISCRAPE_DB_POOL_SIZE', poolSize.default(20)),
  /**
   * omniscrape's own pool in a `worker` process: claims (with pg-boss's fetch in the same
   * transaction), the history rows' heartbeats, settles, maintenance duties, webhook deliveries.
   */
  workerPoolSize: fromEnv('OMNISCRAPE_WORKER_DB_POOL_SIZE', poolSize.default(10)),
  /**
   * pg-boss's own pool (queue heartbeats, failures, its supervisor, cron and maintenance queues).
   * Absent: 10 in `api`; in `worker` and `serve` 4 + a quarter of the worker concurrency, at most
   * 20 (see bossPoolSize in jobs/queue.ts).
   */
  bossPoolSize: fromEnv('OMNISCRAPE_PGBOSS_POOL_SIZE', poolSize.optional()),
  /** The reporting pool (ServiceContext.reporting): report queries are few and may be slow, so it is kept small. */
  reportingPoolSize: fromEnv('OMNISCRAPE_REPORTING_POOL_SIZE', poolSize.default(4)),
  /**
   * Where GET /metrics is served: absent, on the API port (a worker without the API then serves
   * none); set, on a port of its own at HOST, in every role (each process exposes its own counters).
   */
  metricsPort: fromEnv('OMNISCRAPE_METRICS_PORT', z.coerce.number().int().min(0).max(65535).optional()),
  /**
   * Absent: /metrics answers anyone who reaches it, as Prometheus targets usually are (its labels
   * name no key and no URL); set: it requires `Authorization: Bearer <token>`.
   */
  metricsToken: fromEnv(
    'OMNISCRAPE_METRICS_TOKEN',
    z.string().min(16, 'must be at least 16 characters').optional(),
  ),
  /** `fatal` … `trace`, or `silent` (JSON logs on stdout, by pino). */
  logLevel: fromEnv(
    'OMNISCRAPE_LOG_LEVEL',
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  /** How often a worker looks for a due maintenance job (the cron queues them; pg-boss polls for them). */
  maintenancePollSeconds: tunable(z.number().min(0.5).default(30)),
  /** The first retry delay of a failing webhook delivery (then doubling, see WEBHOOK_RETRY_LIMIT). */
  webhookRetryDelaySeconds: tunable(z.number().int().min(1).default(10)),
  /** Whether webhook retry delays grow exponentially (tests turn it off to retry at once). */
  webhookRetryBackoff: tunable(z.boolean().default(true)),
  /** How often a worker looks for a due webhook retry (new deliveries are announced by NOTIFY). */
  webhookPollSeconds: tunable(z.number().min(0.5).default(2)),
  /**
   * How long a receiver's circuit stays open the first time it opens; each further opening without
   * a success in between doubles it, up to an hour (ReceiverBreaker).
   */
  webhookBreakerOpenSeconds: tunable(z.number().min(0.5).max(3600).default(30)),
};

type Settings = typeof settings;

export type Config = { [K in keyof Settings]: z.output<Settings[K]['schema']> };

type TuningField = { [K in keyof Settings]: Settings[K]['env'] extends string ? never : K }[keyof Settings];
/** Settings no environment variable reaches; loadConfig's `tuning` argument sets them. */
export type Tuning = { [K in TuningField]: z.input<Settings[K]['schema']> };

const entries = Object.entries(settings) as [keyof Config, Settings[keyof Config]][];

const envSchema = z.object(
  Object.fromEntries(entries.flatMap(([, s]) => (s.env === undefined ? [] : [[s.env, s.schema]]))),
);
const tuningSchema = z.strictObject(
  Object.fromEntries(entries.flatMap(([field, s]) => (s.env === undefined ? [[field, s.schema]] : []))),
);

/** Each environment variable the service reads, and the Config field it sets. */
export const SETTING_VARIABLES: { field: keyof Config; env: string }[] = entries.flatMap(([field, s]) =>
  s.env === undefined ? [] : [{ field, env: s.env }],
);

export class ConfigError extends Error {}

/**
 * Reads the settings from an environment (and the tuning a test or an embedding program sets);
 * throws a ConfigError that names every bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, tuning: Partial<Tuning> = {}): Config {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = envSchema.safeParse(present);
  const parsedTuning = tuningSchema.safeParse(tuning);
  const issues = [...(parsed.error?.issues ?? []), ...(parsedTuning.error?.issues ?? [])];
  if (!parsed.success || !parsedTuning.success) {
    const problems = issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid settings:\n  ${problems.join('\n  ')}`);
  }
  const byEnv = parsed.data as Record<string, unknown>;
  const byField = parsedTuning.data as Record<string, unknown>;
  return Object.fromEntries(
    entries.map(([field, s]) => [field, s.env === undefined ? byField[field] : byEnv[s.env]]),
  ) as Config;
}

/**
 * Where the API listens: HOST, else 127.0.0.1 in local mode (`serve` on the embedded Postgres,
 * whose key sits in a file on this machine), else every interface (a deployment behind its own
 * network rules).
 */
export function listenHost(config: Config, localMode = false): string {
  return config.host ?? (localMode ? '127.0.0.1' : '0.0.0.0');
}

/**
 * The URL for session-bound work (LISTEN, migrations) of a process whose main connection is
 * `databaseUrl`: OMNISCRAPE_DIRECT_DATABASE_URL, which describes DATABASE_URL's server, so it
 * applies only when DATABASE_URL is set (the embedded Postgres has no pooler in front).
 */
export function directDatabaseUrl(config: Config, databaseUrl: string): string {
  return (config.databaseUrl !== undefined && config.directDatabaseUrl) || databaseUrl;
}
