import {
  AbortedTransactionError,
  Kysely,
  PostgresDialect,
  sql,
  type ColumnType,
  type Generated,
} from 'kysely';
import { Migrator } from 'kysely/migration';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { migrations } from '../../migrations';
import { StartupFailure } from '../startup-failure';

/** Timestamps read back as Date; written as Date or left to their defaults. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export type JobStatus = 'queued' | 'processing' | 'completed' | 'failed' | 'timed_out';

export interface ApiKeysTable {
  id: Generated<string>;
  name: string;
  key_hash: string;
  key_prefix: string;
  created_at: Generated<Date>;
  revoked_at: Timestamp | null;
  /** NULL: the service default (OMNISCRAPE_DEFAULT_CONCURRENCY). */
  concurrency_limit: number | null;
  /** NULL: the service default (OMNISCRAPE_DEFAULT_MAX_QUEUED). */
  max_queued: number | null;
  /** NULL: no quota. */
  monthly_quota: number | null;
}

export interface KeyUsageTable {
  api_key_id: string;
  /** First day of the UTC month. */
  month: ColumnType<Date, string, string>;
  successful_scrapes: Generated<number>;
}

export interface ScrapeJobsTable {
  id: string;
  api_key_id: string;
  kind: 'sync' | 'async';
  url: string;
  host: string;
  method: string;
  format: string;
  timeout_seconds: number;
  status: JobStatus;
  target_status_code: number | null;
  error_code: string | null;
  error_message: string | null;
  attempts: Generated<number>;
  /** numeric(12,6): pg hands it back as a string so no precision is lost. */
  charged: ColumnType<string, number | string | undefined, number | string>;
  result_bytes: number | null;
  elapsed_ms: number | null;
  created_at: Generated<Date>;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  updated_at: Generated<Date>;
  result_expires_at: Timestamp | null;
  /** Async jobs being processed: the worker's last heartbeat (see migration 0003). */
  heartbeat_at: Timestamp | null;
}

export interface JobResultsTable {
  job_id: string;
  result: ColumnType<unknown, string, string>;
  expires_at: Timestamp;
}

export interface Database {
  'omniscrape.api_keys': ApiKeysTable;
  'omniscrape.scrape_jobs': ScrapeJobsTable;
  'omniscrape.job_results': JobResultsTable;
  'omniscrape.key_usage': KeyUsageTable;
}

export type Db = Kysely<Database>;

export interface Store {
  db: Db;
  pool: pg.Pool;
  close(): Promise<void>;
}

/**
 * Opens the pool behind the project's own tables. Connection errors on idle clients (a Postgres
 * restart) are reported, never thrown: the pool replaces broken clients on the next checkout.
 */
export function openStore(
  databaseUrl: string,
  options: {
    max?: number;
    onError?: (err: Error) => void;
    applicationName?: string;
    /** Run repeated statements as prepared statements (see PreparingClient); for long-lived processes. */
    prepareStatements?: boolean;
  } = {},
): Store {
  const pool = new pg.Pool({
    ...(options.prepareStatements ? { Client: PreparingClient } : {}),
    connectionString: databaseUrl,
    max: options.max ?? 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName ?? 'omniscrape',
  });
  pool.on('error', (err) => options.onError?.(err));
  // The pool listens for errors only on idle clients. A checked-out client between two statements
  // of a transaction (no query in flight) that loses its connection would otherwise emit an
  // unhandled 'error' and crash the process; its next statement fails instead, and that failure
  // is what the caller sees (503 on the API).
  pool.on('connect', (client) => client.on('error', (err) => options.onError?.(err)));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    pool,
    async close() {
      await db.destroy();
    },
  };
}

/** Most parameters of a statement worth preparing: bulk VALUES lists vary in length, so each size would be a statement of its own. */
const MAX_PREPARED_PARAMETERS = 32;
/**
 * Most statements one connection prepares; later new ones run unprepared. Some texts vary (pg-boss
 * writes a claim's batch size into its fetch), and each prepared statement holds memory in its
 * Postgres backend for as long as the connection lives; the hot statements come first anyway.
 */
export const MAX_PREPARED_PER_CONNECTION = 100;

/**
 * A statement whose result is `*` (SELECT * …, … RETURNING *): not prepared, since its columns
 * change with the table's and a prepared one fails once a migration adds a column ("cached plan
 * must not change result type"; PreparingClient recovers from that too, at the cost of one failed
 * statement per connection). Worth preparing are statements with parameters (one-off text has
 * nothing to reuse), at most MAX_PREPARED_PARAMETERS of them, and no `*` result.
 */
const STAR_RESULT = /^\s*select\s+("?\w+"?\.)?\*|\breturning\s+("?\w+"?\.)?\*\s*;?\s*$/i;

const isStalePlan = (err: unknown) =>
  (err as { code?: string } | null)?.code === '0A000' &&
  /cached plan must not change result type/.test(String((err as Error).message));

/**
 * A pg client that runs repeated statements as named prepared statements: each connection parses
 * them once, and Postgres keeps a generic plan rather than planning each call. Measured (`npm run
 * bench:profile -- idle`): planning was ~0.3 ms of each pg-boss fetch, ~0.15 ms of each insert and
 * complete, and ~0.1 ms of each history update; idle latency p50 7.5 → 5.3–5.7 ms. (Through
 * PgBouncer in transaction mode this needs its prepared-statement support, 1.21 or later.)
 */
class PreparingClient extends pg.Client {
  static readonly #names = new Map<string, string | undefined>();
  /** Statements this connection found stale (a migration changed their result): prepared anew under a new name. */
  readonly #renamed = new Map<string, number>();
  /** The names this connection has prepared (or is preparing). */
  readonly #prepared = new Set<string>();

  override query(config: any, values?: any, callback?: any): any {
    const base =
      typeof config === 'string' &&
      Array.isArray(values) &&
      values.length > 0 &&
      values.length <= MAX_PREPARED_PARAMETERS
        ? PreparingClient.#nameOf(config)
        : undefined;
    if (base !== undefined) {
      const generation = this.#renamed.get(config) ?? 0;
      const name = generation ? `${base}_${generation}` : base;
      if (!this.#prepared.has(name)) {
        if (this.#prepared.size >= MAX_PREPARED_PER_CONNECTION) return super.query(config, values, callback);
        this.#prepared.add(name);
      }
      const noteStale = (err: unknown) => {
        if (isStalePlan(err)) this.#renamed.set(config, generation + 1);
      };
      if (typeof callback === 'function') {
        return super.query({ name, text: config, values }, (err: Error | null, result: unknown) => {
          if (err) noteStale(err);
          callback(err, result);
        });
      }
      return (super.query({ name, text: config, values }) as Promise<unknown>).catch((err: unknown) => {
        noteStale(err);
        throw err;
      });
    }
    return super.query(config, values, callback);
  }

  /** The statement name of a text worth preparing, or undefined; worked out once per text (the pg-boss fetch is ~3 KB). */
  static #nameOf(text: string): string | undefined {
    if (this.#names.has(text)) return this.#names.get(text);
    if (this.#names.size >= 10_000) this.#names.clear();
    const name = STAR_RESULT.test(text)
      ? undefined
      : `omniscrape_${createHash('sha1').update(text).digest('hex').slice(0, 32)}`;
    this.#names.set(text, name);
    return name;
  }
}

const MIGRATION_TABLE_SCHEMA = 'omniscrape';

function migrator(db: Kysely<any>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableSchema: MIGRATION_TABLE_SCHEMA,
  });
}

/**
 * Applies every pending migration; throws with the failing migration's name. Every path that
 * starts work on a database migrates first, so the server's version is checked here, once.
 */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  await assertSupportedPostgres(db);
  await db.schema.createSchema(MIGRATION_TABLE_SCHEMA).ifNotExists().execute();
  const { error, results } = await migrator(db).migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${reason}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * The oldest Postgres major version omniscrape runs on: pg-boss 12 requires 13 or later (its
 * README), and the migrations need 13 too (gen_random_uuid() is built in from 13; before it came
 * from the pgcrypto extension).
 */
export const OLDEST_SUPPORTED_POSTGRES = 13;

/** Refuses, with a StartupFailure naming both versions, a server older than `oldest` (a major version). */
export async function assertSupportedPostgres(
  db: Kysely<any>,
  oldest = OLDEST_SUPPORTED_POSTGRES,
): Promise<void> {
  const { rows } = await sql<{
    num: string;
    version: string;
  }>`select current_setting('server_version_num') as num, current_setting('server_version') as version`.execute(
    db,
  );
  const num = Number(rows[0]?.num);
  if (!(num >= oldest * 10_000)) {
    throw new StartupFailure(
      `the database runs Postgres ${rows[0]?.version}, and omniscrape needs Postgres ${oldest} or later: upgrade it, or point DATABASE_URL at a newer server`,
      'UNSUPPORTED_POSTGRES',
    );
  }
}

/** True when every known migration has been applied (what /readyz reports). */
export async function isMigrated(db: Kysely<any>): Promise<boolean> {
  const all = await migrator(db).getMigrations();
  return all.every((m) => m.executedAt !== undefined);
}

/**
 * Settings for a worker's claim transaction (pg-boss fetch and the history rows' start, together).
 *
 * - enable_sort off: pg-boss's fetch should walk its queue-order index and stop after a batch.
 *   Measured (npm run bench:profile -- submit, with PROFILE_EXPLAIN_MS): with statistics that lag a
 *   fast-growing queue, Postgres estimated 2 ready jobs, bitmap-scanned and sorted all 7,396 of them
 *   on every fetch (9.3 ms mean per fetch, rising with the backlog). Sorts the statement cannot do
 *   without (its window over the batch) still run.
 * - synchronous_commit off: the claim commits without waiting for its WAL flush. Both halves of a
 *   claim are in this one transaction, so a crash that loses it loses both: the job is simply queued
 *   again, as if never claimed (its scrape, if it had begun, runs again, as after any crash). And
 *   the job's outcome is committed durably, which flushes the claim's WAL before it.
 * - jit off: a claim's statements are short lookups that compiling never pays for, and on
 *   Postgres 16 and older a disabled plan node (enable_sort off) adds 1e10 to the plan's cost,
 *   past every jit_*_above_cost threshold: on a server built with LLVM (Debian's, most managed
 *   services') each fetch was compiled first, most of the claim's time (figures in the README,
 *   Performance). Set here, per transaction, rather than per
 *   connection, so it holds through PgBouncer's transaction mode too, and leaves every other
 *   session's JIT setting alone. test/stock-postgres-jit.test.ts checks the claim's plans.
 * - plan_cache_mode force_generic_plan: the claim's statements run prepared (see PreparingClient),
 *   and their plans do not depend on the values (a batch's ids and keys): Postgres kept planning the
 *   key count anew for every claim (0.13 ms each). Measured with `npm run bench:profile -- idle`:
 *   p50 6.0–6.8 → 5.4–5.9 ms over three runs each.
 */
export const CLAIM_TRANSACTION_SETTINGS = {
  enable_sort: 'off',
  synchronous_commit: 'off',
  jit: 'off',
  plan_cache_mode: 'force_generic_plan',
} as const;

/**
 * Runs `fn` in a transaction whose BEGIN and `set local` settings reach Postgres as one message
 * (a multi-statement simple query), one round trip instead of two — the claim transaction is on
 * every job's path. Settings are fixed names and values written in the code (checked to be plain
 * words), never request data. Commits when `fn` resolves, rolls back when it throws; a COMMIT that
 * Postgres answers with ROLLBACK (an earlier statement failed and was caught) throws Kysely's
 * AbortedTransactionError, as Kysely's own transactions do.
 */
export async function transactionWithSettings<T>(
  db: Db,
  settings: Readonly<Record<string, string>>,
  fn: (trx: Db) => Promise<T>,
): Promise<T> {
  const sets = Object.entries(settings).map(([name, value]) => {
    if (!/^[a-z_]+$/.test(name) || !/^[a-z0-9_]+$/.test(value))
      throw new Error(`not a plain setting: ${name}=${value}`);
    return `set local ${name} = ${value}`;
  });
  return db.connection().execute(async (conn) => {
    let result: T;
    try {
      // Inside the try: a setting that fails leaves the transaction open (aborted), to be rolled back.
      await sql.raw(['begin', ...sets].join('; ')).execute(conn);
      result = await fn(conn);
    } catch (err) {
      // A failed rollback means the connection is broken (the pool drops it); the error to report is `err`.
      await sql
        .raw('rollback')
        .execute(conn)
        .catch(() => undefined);
      throw err;
    }
    const { rows } = await sql.raw<{ command?: string }>('commit').execute(conn);
    if (rows[0]?.command === 'ROLLBACK') throw new AbortedTransactionError();
    return result;
  });
}

/**
 * Whether a failed statement failed because of the data it was given (SQLSTATE classes 22 data
 * exception, 23 integrity constraint, 54 program limit), its transaction lost a deadlock or
 * serialization conflict (40P01, 40001), or a prepared statement turned stale (it is prepared anew):
 * writing the same items again, fewer at a time, may succeed. Any other failure (Postgres away, out
 * of connections, a commit whose outcome is unknown) would fail again or do harm.
 */
export function isRetryableWithFewerRows(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    (/^(22|23|54)[0-9A-Z]{3}$/.test(code) || code === '40001' || code === '40P01' || isStalePlan(err))
  );
}
