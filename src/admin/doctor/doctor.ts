import type { Config } from '../../config';
import {
  pendingDeferredSteps,
  readServerSettings,
  roleAndMigrationTable,
  type ServerSettings,
} from '../admin-queries';
import { connectionBudget } from '../connection-budget';
import { pendingQueueSchema } from '../database-setup';
import { PGBOSS_SCHEMA, PGBOSS_SCHEMA_VERSION } from '../../jobs/queue';
import { pendingMigrations } from '../../db/migration-state';
import { detectPgBouncer, pgBouncerProblems, type PgBouncerDetection } from '../pgbouncer-detection';
import { openStore } from '../../db/pool';
import { checkRuntimeRole } from '../runtime-role';
import type { Db } from '../../db/schema';
import { settingsVerdicts } from './server-settings';
import { fail, ok, warn, type Verdict } from './verdict';

/** How many processes of each role the deployment runs: their connection budgets add up. */
export interface Deployment {
  api: number;
  worker: number;
  serve: number;
}

export interface DoctorOptions {
  config: Config;
  /** The URL the service runs as (DATABASE_URL): its role, its session settings. */
  databaseUrl: string;
  deployment: Deployment;
  /** OLDEST_SUPPORTED_POSTGRES unless given: a test plays an old server by raising it. */
  oldestSupportedPostgres?: number;
}

/**
 * Checks what the service relies on at `databaseUrl`, one verdict each: the server (version,
 * writable, encoding, isolation, timeouts), the migrations (omniscrape's and pg-boss's), the
 * runtime role's grants, PgBouncer, and max_connections against the deployment's connection
 * budget. Reads only. A connection that fails throws (the caller explains it); a check that
 * fails otherwise is a `fail` verdict naming its error.
 */
export async function runDoctor(options: DoctorOptions): Promise<Verdict[]> {
  const store = openStore(options.databaseUrl, { max: 1, applicationName: 'omniscrape-doctor' });
  try {
    const settings = await readServerSettings(store.db);
    const pgBouncer = await detectPgBouncer(options.databaseUrl);
    return [
      ...settingsVerdicts(settings, options.oldestSupportedPostgres),
      ...(await checked('migrations', () => migrationVerdicts(store.db))),
      ...(await checked('runtime role', () => runtimeRoleVerdicts(store.db))),
      ...pgBouncerVerdicts(pgBouncer, options.config),
      connectionsVerdict(settings, options, pgBouncer.pgbouncer === true),
    ];
  } finally {
    await store.close();
  }
}

/** `fn`'s verdicts, or a `fail` naming what kept it from checking (a role without its grants: which). */
async function checked(check: string, fn: () => Promise<Verdict[]>): Promise<Verdict[]> {
  try {
    return await fn();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const why = (err as { code?: string }).code === '42501' ? ' (see the runtime role line)' : '';
    return [fail(check, `could not check: ${message}${why}`)];
  }
}

const MIGRATE = 'run `omniscrape migrate` as the owner role (OMNISCRAPE_MIGRATION_DATABASE_URL)';

async function migrationVerdicts(db: Db): Promise<Verdict[]> {
  const pending = await pendingMigrations(db);
  const names = pending.length > 3 ? `${pending[0]} … ${pending.at(-1)}` : pending.join(', ');
  const ours =
    pending.length > 0
      ? fail('migrations', `${pending.length} pending (${names}): ${MIGRATE}`)
      : ok('migrations', "omniscrape's all applied");
  const deferred = pending.length > 0 ? [] : await pendingDeferredSteps(db);
  const queueSchema = await pendingQueueSchema(db);
  return [
    ours,
    ...(deferred.length > 0
      ? [
          warn(
            'migrations',
            `steps left to run after them: ${deferred.join(', ')}: the service works meanwhile; ${MIGRATE} to finish them`,
          ),
        ]
      : []),
    queueSchema
      ? fail('pg-boss', `${queueSchema}: ${MIGRATE}`)
      : ok('pg-boss', `schema version ${PGBOSS_SCHEMA_VERSION}, this release's`),
  ];
}

async function runtimeRoleVerdicts(db: Db): Promise<Verdict[]> {
  const { role, migrated } = await roleAndMigrationTable(db);
  if (!migrated)
    return [warn('runtime role', `role "${role}": its grants can be checked once migrate has run`)];
  const { missing, excess } = await checkRuntimeRole(db, role, PGBOSS_SCHEMA);
  const grant = `run \`omniscrape db grant-runtime ${role} --apply\` as the owner role`;
  if (missing.length > 0) {
    const shown = missing.slice(0, 3).join(', ') + (missing.length > 3 ? `, … (${missing.length})` : '');
    return [fail('runtime role', `role "${role}" lacks ${shown}: ${grant}`)];
  }
  if (excess.length > 0)
    return [
      warn(
        'runtime role',
        `role "${role}" has the runtime grants, and ${excess.includes('superuser') ? 'is a superuser' : `may also ${excess.join(', ')}`}: fine for serve and migrate; api and worker need only the runtime grants (docs/production-postgres.md, "Roles and grants")`,
      ),
    ];
  return [ok('runtime role', `role "${role}" has the runtime grants, and no DDL rights`)];
}

function pgBouncerVerdicts(detection: PgBouncerDetection, config: Config): Verdict[] {
  if (detection.pgbouncer === false) return [ok('pgbouncer', 'none: DATABASE_URL reaches Postgres itself')];
  if (detection.pgbouncer === undefined)
    return [
      warn(
        'pgbouncer',
        'could not tell whether DATABASE_URL goes through a pooler; behind one in transaction mode, see docs/production-postgres.md, "PgBouncer"',
      ),
    ];
  const what = `PgBouncer${detection.version ? ` ${detection.version}` : ''} in ${detection.poolMode ?? 'an unknown'} mode (${detection.poolModeSource === 'admin-console' ? 'its admin console' : 'observed'})`;
  const problems = pgBouncerProblems(detection, {
    preparedStatements: config.preparedStatements,
    directDatabaseUrl: config.directDatabaseUrl,
  });
  if (problems.length === 0) return [ok('pgbouncer', `${what}: the settings fit`)];
  return problems.map((problem) => fail('pgbouncer', `${what}: ${problem}`));
}

const ROLES = {
  api: { api: true, worker: false },
  worker: { api: false, worker: true },
  serve: { api: true, worker: true },
} as const;

/**
 * The deployment's connections to this server at most (connectionBudget per process) against what
 * max_connections leaves. Behind PgBouncer only the LISTEN connections come here directly; the
 * pools' reach Postgres as PgBouncer's server connections (its default_pool_size).
 */
function connectionsVerdict(
  settings: ServerSettings,
  options: DoctorOptions,
  behindPgBouncer: boolean,
): Verdict {
  const { config, deployment } = options;
  const parts = (Object.keys(ROLES) as (keyof typeof ROLES)[])
    .filter((role) => deployment[role] > 0)
    .map((role) => {
      const budget = connectionBudget(config, ROLES[role]);
      const elsewhere = config.reportingDatabaseUrl ? budget.reporting : 0;
      const here = behindPgBouncer ? budget.listeners : budget.total - elsewhere;
      return { role, count: deployment[role], here };
    });
  const need = parts.reduce((sum, p) => sum + p.count * p.here, 0);
  const shape = parts.map((p) => `${p.count} ${p.role} × ${p.here}`).join(' + ') || 'no process';
  const available = settings.maxConnections - settings.reservedConnections;
  const others = settings.otherConnections;
  const leaves = `max_connections ${settings.maxConnections} leaves ${available} (${settings.reservedConnections} reserved)`;
  const via = behindPgBouncer ? ' directly (the pools go through PgBouncer)' : '';
  if (need > available)
    return fail(
      'max_connections',
      `${shape} = ${need} connections at most${via}, more than ${leaves}: raise max_connections, run fewer processes or lower the pools (docs/production-postgres.md, "Connection budget")`,
    );
  if (need + others > available)
    return warn(
      'max_connections',
      `${shape} = ${need} connections at most${via}; ${leaves}, but other clients hold ${others} now, leaving ${available - others}`,
    );
  return ok(
    'max_connections',
    `${shape} = ${need} connections at most${via}; ${leaves}, ${others} held by other clients now`,
  );
}
