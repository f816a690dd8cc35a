import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { PreparingClient } from './prepared-statements';
import type { ReportingDatabase, ReportingDb } from './reporting/reporting-schema';
import type { Database, Db } from './schema';

export interface Store {
  db: Db;
  pool: pg.Pool;
  close(): Promise<void>;
}

interface PoolOptions {
  max?: number;
  onError?: (err: Error) => void;
  applicationName?: string;
}

/**
 * Connection errors on idle clients (a Postgres restart) are reported, never thrown: the pool
 * replaces broken clients on the next checkout.
 */
function openPool(
  databaseUrl: string,
  options: PoolOptions & Pick<pg.PoolConfig, 'Client' | 'types'>,
): pg.Pool {
  const pool = new pg.Pool({
    ...(options.Client ? { Client: options.Client } : {}),
    ...(options.types ? { types: options.types } : {}),
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
  return pool;
}

/** Opens the pool behind the project's own tables. */
export function openStore(
  databaseUrl: string,
  options: PoolOptions & {
    /** Run repeated statements as prepared statements (see PreparingClient); for long-lived processes. */
    prepareStatements?: boolean;
  } = {},
): Store {
  const pool = openPool(databaseUrl, {
    ...options,
    ...(options.prepareStatements ? { Client: PreparingClient } : {}),
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    pool,
    async close() {
      await db.destroy();
    },
  };
}

const DATE_OID: number = pg.types.builtins.DATE;
const INT8_OID: number = pg.types.builtins.INT8;
/**
 * Reporting values as the views mean them: a `date` is a calendar day, kept as its text
 * (`YYYY-MM-DD`, not a Date at some time zone's midnight), and a bigint count is a number.
 */
const reportingTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === DATE_OID) return (value: string) => value;
    if (oid === INT8_OID) return Number;
    return pg.types.getTypeParser(oid, format) as unknown;
  }) as typeof pg.types.getTypeParser,
};

/**
 * Opens the handle for reporting reads (the reporting views) on its own small pool: heavy report
 * queries then never take the connections the job path needs, on whichever server they run.
 */
export function openReportingDb(databaseUrl: string, options: PoolOptions = {}): ReportingDb {
  return openReportingStore(databaseUrl, options).db;
}

/** openReportingDb's handle with its pool beside it (whose use a service reports as metrics). */
export function openReportingStore(
  databaseUrl: string,
  options: PoolOptions = {},
): { db: ReportingDb; pool: pg.Pool } {
  const pool = openPool(databaseUrl, { ...options, types: reportingTypes });
  return { db: new Kysely<ReportingDatabase>({ dialect: new PostgresDialect({ pool }) }), pool };
}

/** A pool's size and use, as pg-boss reports its own pool's (poolCounts). */
export interface PoolCounts {
  max: number;
  total: number;
  idle: number;
  waiting: number;
}

export const poolCounts = (pool: pg.Pool): PoolCounts => ({
  max: pool.options.max,
  total: pool.totalCount,
  idle: pool.idleCount,
  waiting: pool.waitingCount,
});

/** Whether Postgres answers on this pool (what /readyz checks first); throws when it does not. */
export async function pingDatabase(db: Db): Promise<void> {
  await db.selectNoFrom((eb) => eb.lit(1).as('one')).execute();
}

/** Opens one connection to `databaseUrl` and closes it again; throws what connecting threw. */
export async function assertConnects(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined); // a failure to connect is what connect() rejects with
  try {
    await client.connect();
  } finally {
    await client.end().catch(() => undefined);
  }
}
