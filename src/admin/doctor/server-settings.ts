import type { ServerSettings } from '../admin-queries';
import { OLDEST_SUPPORTED_POSTGRES, unsupportedPostgres } from '../migrate';
import { fail, ok, warn, type Verdict } from './verdict';

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
