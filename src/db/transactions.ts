import { AbortedTransactionError, sql } from 'kysely';
import { isStalePlan } from './prepared-statements';
import type { Db } from './schema';

/**
 * Settings for a worker's claim transaction: pg-boss's fetch, the key-slot count
 * (lockAndCountKeySlots) and the start of the jobs' attempts (startScrapeAttempts), together.
 *
 * - enable_sort off: pg-boss's fetch should walk its queue-order index and stop after a batch.
 *   With statistics that lag a fast-growing queue, Postgres expects a handful of ready jobs and
 *   otherwise sorts the whole backlog on every fetch (docs/performance.md). Sorts the statement
 *   cannot do without (its window over the batch) still run.
 * - synchronous_commit off: the claim commits without waiting for its WAL flush. Both halves of a
 *   claim are in this one transaction, so a crash that loses it loses both: the job is simply queued
 *   again, as if never claimed (its scrape, if it had begun, runs again, as after any crash). And
 *   the job's outcome is committed durably, which flushes the claim's WAL before it.
 * - jit off: a claim's statements are short lookups that compiling never pays for. On Postgres 17
 *   and older a disabled plan node (enable_sort off) adds 1e10 to the plan's cost, past every
 *   jit_*_above_cost threshold, so on a server built with LLVM (Debian's, most managed services')
 *   JIT would compile each fetch first, most of the claim's time (docs/performance.md); Postgres 18
 *   counts disabled nodes apart from the cost. Set here, per transaction, rather than per
 *   connection, so it holds through PgBouncer's transaction mode too, and leaves every other
 *   session's JIT setting alone. test/stock-postgres-jit.test.ts checks the claim's plans.
 * - plan_cache_mode force_generic_plan: the claim's statements run prepared (see PreparingClient),
 *   and their plans do not depend on the values (a batch's ids and keys), yet under the default
 *   mode Postgres plans the key count anew for every claim (docs/performance.md).
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
