import { sql } from 'kysely';
import { OLDEST_SUPPORTED_POSTGRES, unsupportedPostgres, type ServerVersion } from '../migrate';
import type { Db } from '../../db/schema';
import { fail, ok, warn, type Verdict } from './verdict';

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

/**
 * Below this, statement_timeout may cut short the service's longest statements: the daily usage
 * roll-up of a busy day (one aggregate over it; the history retention deletes only rolled-up
 * days), the dashboard's widest ranges and long `omniscrape report`s. Migrations set their own.
 */
export const STATEMENT_TIMEOUT_MIN_MS = 60_000;
/**
 * Below this, lock_timeout may fail the service's own waits under load: a claim or a sync scrape
 * waits for the other transactions holding its key's lock (omniscrape.key_slots) to commit.
 */
export const LOCK_TIMEOUT_MIN_MS = 5_000;
/**
 * Below this, idle_in_transaction_session_timeout may end a connection whose process paused
 * between two statements of a transaction (a busy CPU, a garbage collection): the transaction is
 * lost and the request or claim fails. The service's transactions do no other work in between.
 */
export const IDLE_IN_TRANSACTION_MIN_MS = 10_000;

const seconds = (ms: number) => `${ms / 1000} s`;

/** Verdicts on the server's version and its session settings, one line each. */
export function settingsVerdicts(settings: ServerSettings, oldestSupported?: number): Verdict[] {
  const { version } = settings;
  const old = unsupportedPostgres(version, oldestSupported);
  return [
    old
      ? fail('postgres version', old)
      : ok(
          'postgres version',
          `${version.text.split(' ')[0]}: supported (${oldestSupported ?? OLDEST_SUPPORTED_POSTGRES} or later; CI runs 15 and 18)`,
        ),
    settings.inRecovery || settings.readOnly
      ? fail(
          'writable',
          `${settings.inRecovery ? 'the server is a standby in recovery' : 'default_transaction_read_only is on'}: omniscrape writes on every request; point DATABASE_URL at the primary`,
        )
      : ok('writable', 'the primary, read-write'),
    settings.encoding === 'UTF8'
      ? ok('encoding', 'UTF8')
      : fail(
          'encoding',
          `the database is ${settings.encoding}: scraped pages hold any Unicode, which only a UTF8 database stores; create the database with ENCODING 'UTF8'`,
        ),
    settings.isolation === 'read committed'
      ? ok('default_transaction_isolation', 'read committed')
      : fail(
          'default_transaction_isolation',
          `${settings.isolation}: omniscrape's claims count a key's running jobs after taking its lock, which needs each statement to see what committed before it (read committed); reset it for this role or database`,
        ),
    timeoutVerdict('statement_timeout', settings.statementTimeoutMs, STATEMENT_TIMEOUT_MIN_MS, {
      why: "the daily usage roll-up of a busy day, the dashboard's widest ranges and long reports may take longer (migrations set their own)",
      off: 'off (migrations run without one either way)',
    }),
    timeoutVerdict('lock_timeout', settings.lockTimeoutMs, LOCK_TIMEOUT_MIN_MS, {
      why: "under load a claim waits that long for its key's lock, held by other claims until they commit",
      off: 'off (migrations set their own, short)',
    }),
    timeoutVerdict(
      'idle_in_transaction_session_timeout',
      settings.idleInTransactionTimeoutMs,
      IDLE_IN_TRANSACTION_MIN_MS,
      {
        why: 'a process paused between two statements (a busy CPU, a garbage collection) would lose its transaction',
        off: 'off',
      },
    ),
  ];
}

function timeoutVerdict(
  name: string,
  ms: number,
  minimumMs: number,
  text: { why: string; off: string },
): Verdict {
  if (ms === 0) return ok(name, text.off);
  if (ms >= minimumMs) return ok(name, seconds(ms));
  return warn(
    name,
    `${seconds(ms)}, under ${seconds(minimumMs)}: ${text.why}; set it to 0 or ${seconds(minimumMs)} or more for this role (alter role … set ${name} = …)`,
  );
}
