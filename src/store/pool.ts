import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { PreparingClient } from './prepared-statements';
import type { Database, Db } from './schema';

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

/** Whether Postgres answers on this pool (what /readyz checks first); throws when it does not. */
export async function pingDatabase(db: Db): Promise<void> {
  await db.selectNoFrom((eb) => eb.lit(1).as('one')).execute();
}
