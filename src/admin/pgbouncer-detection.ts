import pg from 'pg';

export type PoolMode = 'session' | 'transaction' | 'statement';

/** What a database URL reaches: Postgres itself, or PgBouncer in front of it (for `omniscrape doctor`). */
export interface PgBouncerDetection {
  /**
   * true: PgBouncer answers at the URL's host and port (its admin console admitted the user, or
   * refused it as only PgBouncer does); false: Postgres itself answers (it has no `pgbouncer`
   * database); undefined: neither could be told (another pooler, or the probe could not log in).
   */
  pgbouncer: boolean | undefined;
  /** PgBouncer's version (`1.18.0`), when its admin console admitted the user. */
  version?: string;
  /**
   * How the URL's connections are pooled: read from the admin console when it admits the user
   * (`admin_users` or `stats_users`), else observed: whether an idle connection keeps its Postgres
   * session while another connection runs a transaction. Unset for Postgres itself.
   */
  poolMode?: PoolMode;
  poolModeSource?: 'admin-console' | 'observed';
  /**
   * Whether PgBouncer carries protocol-level named prepared statements across transactions
   * (1.21 or later with max_prepared_statements above 0); known only from the admin console.
   */
  preparedStatements?: boolean;
}

const PROBE = { connectionTimeoutMillis: 5_000, application_name: 'omniscrape-doctor' };

/**
 * Tells whether `databaseUrl` reaches PgBouncer, and its pool mode. PgBouncer answers SHOW
 * commands only on its admin console (database `pgbouncer`, same host and port), which admits only
 * its admin_users and stats_users: for anyone else it still gives itself away (FATAL "not allowed",
 * where Postgres says the database does not exist), and the pool mode is then observed instead.
 */
export async function detectPgBouncer(databaseUrl: string): Promise<PgBouncerDetection> {
  const admin = await readAdminConsole(databaseUrl);
  if (admin.pgbouncer === false) return { pgbouncer: false };
  if (admin.poolMode) return { ...admin, poolModeSource: 'admin-console' };
  return { ...admin, poolMode: await observePoolMode(databaseUrl), poolModeSource: 'observed' };
}

/**
 * What the service needs changed to run at a URL so detected, one line each (none: it runs as
 * configured). Statement mode cannot run it at all: jobs are claimed and settled in transactions.
 */
export function pgBouncerProblems(
  detection: PgBouncerDetection,
  settings: { preparedStatements: boolean; directDatabaseUrl?: string },
): string[] {
  if (detection.poolMode === 'statement')
    return ['PgBouncer runs this database in statement mode: omniscrape needs transaction mode (or session)'];
  if (detection.poolMode !== 'transaction') return [];
  const problems: string[] = [];
  if (settings.preparedStatements && detection.preparedStatements !== true)
    problems.push(
      'set OMNISCRAPE_PREPARED_STATEMENTS=false: in transaction mode PgBouncer before 1.21 (or with max_prepared_statements = 0) loses named prepared statements between transactions',
    );
  if (!settings.directDatabaseUrl)
    problems.push(
      'set OMNISCRAPE_DIRECT_DATABASE_URL to Postgres itself: LISTEN and the migrations need a session of their own, which transaction mode does not keep',
    );
  return problems;
}

/** Reads version and pool mode from PgBouncer's admin console, when it admits the user. */
async function readAdminConsole(databaseUrl: string): Promise<Omit<PgBouncerDetection, 'poolModeSource'>> {
  const url = new URL(databaseUrl);
  const database = decodeURIComponent(url.pathname.slice(1)) || decodeURIComponent(url.username);
  const user = decodeURIComponent(url.username);
  url.pathname = '/pgbouncer';
  const client = new pg.Client({ connectionString: url.toString(), ...PROBE });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    const { code, message } = err as { code?: string; message?: string };
    if (code === '3D000') return { pgbouncer: false }; // Postgres: no database named pgbouncer
    return { pgbouncer: message === 'not allowed' ? true : undefined };
  }
  try {
    // The admin console speaks the simple query protocol only: no parameters.
    const show = async (what: string) => (await client.query<Record<string, unknown>>(`SHOW ${what}`)).rows;
    const version = /(\d+\.\d+(\.\d+)?)/.exec(String((await show('VERSION'))[0]?.version))?.[1];
    const config = new Map((await show('CONFIG')).map((r) => [r.key, String(r.value)]));
    const userMode = (await show('USERS')).find((r) => r.name === user)?.pool_mode;
    const databaseMode = (await show('DATABASES')).find((r) => r.name === database)?.pool_mode;
    const poolMode = (userMode || databaseMode || config.get('pool_mode')) as PoolMode | undefined;
    const maxPrepared = Number(config.get('max_prepared_statements') ?? 0);
    return { pgbouncer: true, version, poolMode, preparedStatements: maxPrepared > 0 };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Whether an idle connection keeps its Postgres session: connection A runs a statement, then B
 * opens a transaction. A session pooler keeps A's backend for A, so B never gets it; a transaction
 * pooler hands the backend A just released to B (PgBouncer reuses the most recent one first).
 * Tried a few times, as other clients of the pool may take that backend first. Statement mode
 * refuses B's transaction outright.
 */
async function observePoolMode(databaseUrl: string): Promise<PoolMode | undefined> {
  const a = new pg.Client({ connectionString: databaseUrl, ...PROBE });
  const b = new pg.Client({ connectionString: databaseUrl, ...PROBE });
  for (const client of [a, b]) client.on('error', () => undefined);
  const pid = async (client: pg.Client) =>
    (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  try {
    await Promise.all([a.connect(), b.connect()]);
    for (let attempt = 0; attempt < 3; attempt++) {
      const released = await pid(a);
      await b.query('begin');
      const taken = await pid(b);
      await b.query('rollback');
      if (taken === released) return 'transaction';
    }
    return 'session';
  } catch (err) {
    if (/statement pooling mode/.test((err as Error).message)) return 'statement';
    return undefined;
  } finally {
    await Promise.all([a.end().catch(() => undefined), b.end().catch(() => undefined)]);
  }
}
