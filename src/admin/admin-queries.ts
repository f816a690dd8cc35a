// The SQL the administration commands run (set-up, doctor) that no other module owns: the grants'
// SQL is in runtime-role.ts and reporting-role.ts, the migrations' in migrate.ts.
import { sql } from 'kysely';
import type { Db } from '../db/schema';
import type { ServerVersion } from './migrate';

/**
 * The version pg-boss recorded for its schema `schema` (its `version` table), or null when pg-boss
 * is not installed there. Reads only, so a runtime role can ask before pg-boss starts.
 */
export async function installedQueueSchemaVersion(db: Db, schema: string): Promise<number | null> {
  const { rows } = await sql<{ installed: boolean }>`
    select to_regclass(${`${schema}.version`}) is not null as installed`.execute(db);
  if (!rows[0]?.installed) return null;
  const version = await sql<{ version: number }>`
    select version::int as version from ${sql.id(schema, 'version')}`.execute(db);
  return version.rows[0]?.version ?? null;
}

/** The role this connection runs as. */
export async function currentRole(db: Db): Promise<string | undefined> {
  const { rows } = await sql<{ role: string }>`select current_user as role`.execute(db);
  return rows[0]?.role;
}

/**
 * The role this connection runs as, and whether omniscrape's migration table exists: read from the
 * catalog, which every role may read (to_regclass needs USAGE on the schema).
 */
export async function roleAndMigrationTable(db: Db): Promise<{ role: string; migrated: boolean }> {
  const { rows } = await sql<{ role: string; migrated: boolean }>`
    select current_user as role,
           exists (select from pg_class c join pg_namespace n on n.oid = c.relnamespace
                    where n.nspname = 'omniscrape' and c.relname = 'kysely_migration') as migrated`.execute(
    db,
  );
  return rows[0]!;
}

/** The deferred migration steps not yet done, by name (quoted), in name order. */
export async function pendingDeferredSteps(db: Db): Promise<string[]> {
  const rows = await db
    .selectFrom('omniscrape.deferred_steps')
    .select('name')
    .where('done_at', 'is', null)
    .orderBy('name')
    .execute();
  return rows.map((r) => `"${r.name}"`);
}

/** Runs SQL text another library wrote (pg-boss's REINDEX commands), one statement at a time. */
export async function runCommands(db: Db, commands: readonly string[]): Promise<void> {
  for (const command of commands) await sql.raw(command).execute(db);
}

/** What the doctor reads of the server, as this connection's session sees it (role and database settings applied). */
export interface ServerSettings {
  version: ServerVersion;
  inRecovery: boolean;
  readOnly: boolean;
  encoding: string;
  isolation: string;
  /** Milliseconds; 0 is off. */
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
  maxConnections: number;
  /** superuser_reserved_connections, plus reserved_connections from 16 on. */
  reservedConnections: number;
  /** Connections other clients hold now (not omniscrape's, not this one). */
  otherConnections: number;
}

export async function readServerSettings(db: Db): Promise<ServerSettings> {
  const { rows } = await sql<
    Record<keyof ServerSettings, unknown> & { version_num: string; version_text: string }
  >`
    select current_setting('server_version_num') as version_num,
           current_setting('server_version') as version_text,
           pg_is_in_recovery() as "inRecovery",
           current_setting('default_transaction_read_only') = 'on' as "readOnly",
           current_setting('server_encoding') as encoding,
           current_setting('default_transaction_isolation') as isolation,
           (select setting::bigint from pg_settings where name = 'statement_timeout') as "statementTimeoutMs",
           (select setting::bigint from pg_settings where name = 'lock_timeout') as "lockTimeoutMs",
           (select setting::bigint from pg_settings where name = 'idle_in_transaction_session_timeout')
             as "idleInTransactionTimeoutMs",
           current_setting('max_connections')::int as "maxConnections",
           current_setting('superuser_reserved_connections')::int
             + coalesce(current_setting('reserved_connections', true)::int, 0) as "reservedConnections",
           (select count(*) from pg_stat_activity
             where datid is not null and pid <> pg_backend_pid()
               and coalesce(application_name, '') not like 'omniscrape%')::int as "otherConnections"`.execute(
    db,
  );
  const row = rows[0]!;
  return {
    version: { num: Number(row.version_num), text: row.version_text },
    inRecovery: row.inRecovery === true,
    readOnly: row.readOnly === true,
    encoding: String(row.encoding),
    isolation: String(row.isolation),
    statementTimeoutMs: Number(row.statementTimeoutMs),
    lockTimeoutMs: Number(row.lockTimeoutMs),
    idleInTransactionTimeoutMs: Number(row.idleInTransactionTimeoutMs),
    maxConnections: Number(row.maxConnections),
    reservedConnections: Number(row.reservedConnections),
    otherConnections: Number(row.otherConnections),
  };
}
