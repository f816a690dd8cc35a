import type { Config } from '../config';
import { bossPoolSize } from '../jobs/queue';

export interface ConnectionBudget {
  /** omniscrape's own pool: OMNISCRAPE_DB_POOL_SIZE with the API, OMNISCRAPE_WORKER_DB_POOL_SIZE without. */
  store: number;
  /** pg-boss's pool (OMNISCRAPE_PGBOSS_POOL_SIZE, else its default by role). */
  boss: number;
  /** The reporting pool of the API's dashboard (OMNISCRAPE_REPORTING_POOL_SIZE); a worker reads no report. */
  reporting: number;
  /**
   * Connections held for LISTEN, one each: the API's (key changes and job status notices), the
   * worker's (queued jobs) and pg-boss's in a worker (its queues' notices).
   */
  listeners: number;
  /** The most a process of these roles opens at once, after its start-up step has closed its own. */
  total: number;
}

/**
 * The most connections a process of these roles opens to Postgres (docs/production-postgres.md:
 * Connection budget), so a team can fit api, worker and serve processes into a shared
 * max_connections. The start-up step (serve's migration, api's and worker's check) closes its
 * connections before these open.
 */
export function connectionBudget(config: Config, roles: { api: boolean; worker: boolean }): ConnectionBudget {
  const store = roles.api ? config.apiPoolSize : config.workerPoolSize;
  const boss = bossPoolSize(config, roles.worker ? 'worker' : 'api');
  const reporting = roles.api ? config.reportingPoolSize : 0;
  const listeners = (roles.api ? 1 : 0) + (roles.worker ? 2 : 0);
  return { store, boss, reporting, listeners, total: store + boss + reporting + listeners };
}
