import pg from 'pg';
import { loadConfig } from '../src/config';
import { connectionBudget } from '../src/admin/connection-budget';
import type { ServiceRoles } from '../src/service';
import { runCli } from './helpers/cli';
import { connectionListTo } from './helpers/connections';
import { createTestDatabase } from './helpers/database';
import { startApiRole, startWorkerAndApi, type ApiProcess, type RoleProcess } from './helpers/role-processes';
import { startTargetServer, type TargetServer } from './helpers/target-server';

const KEY = 'connection-budget-key-01';
/** Every pool at 2: the service must stay correct on so few (slower, no errors). */
const POOLS_OF_TWO = {
  OMNISCRAPE_DB_POOL_SIZE: '2',
  OMNISCRAPE_WORKER_DB_POOL_SIZE: '2',
  OMNISCRAPE_PGBOSS_POOL_SIZE: '2',
  OMNISCRAPE_REPORTING_POOL_SIZE: '2',
  OMNISCRAPE_WORKER_CONCURRENCY: '10',
};

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let target: TargetServer;
let admin: pg.Client;
let adminKey: string;
const env = () => ({ DATABASE_URL: database.url, OMNISCRAPE_API_KEYS: `budget:${KEY}`, ...POOLS_OF_TWO });
const running: RoleProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  target = await startTargetServer({
    // A little work per page, so scrapes, claims and settles overlap.
    '/n': (_req, res) => {
      setTimeout(() => res.end('page'), 20);
    },
  });
  expect((await runCli(['migrate'], { DATABASE_URL: database.url })).code).toBe(0);
  const created = await runCli(['keys', 'create', 'budget-admin', '--admin'], { DATABASE_URL: database.url });
  adminKey = created.stdout.trim();
  admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
});
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await admin?.end();
  await target?.close();
  await database?.drop();
});

/** The most connections each process held, and the most backends the database had, while sampling. */
function sampleConnections(pids: Record<string, number>) {
  const port = Number(new URL(database.url).port);
  const dbName = new URL(database.url).pathname.slice(1);
  const most: Record<string, number> = Object.fromEntries(Object.keys(pids).map((k) => [k, 0]));
  /** Each process's connections when it held the most: what a failure shows. */
  const seen: Record<string, string[]> = {};
  let backends = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      for (const [name, pid] of Object.entries(pids)) {
        const held = connectionListTo(pid, port);
        if (held.length > most[name]!) [most[name], seen[name]] = [held.length, held];
      }
      const { rows } = await admin.query(
        'select count(*)::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
        [dbName],
      );
      backends = Math.max(backends, rows[0].n);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { most, backends, seen };
    },
  };
}

/**
 * Async jobs from several clients at once, sync scrapes and dashboard reads beside them; every
 * job waited for through the API. Returns each answer's status and each job's end, tallied.
 */
async function runFlow(api: ApiProcess, jobs: number) {
  const answers: Record<number, number> = {};
  const count = (status: number) => (answers[status] = (answers[status] ?? 0) + 1);
  const ids: string[] = [];
  let next = 0;
  const submitter = async () => {
    while (next < jobs) {
      next++;
      const res = await api.call('POST', '/v1/scrape/async', { url: `${target.origin}/n` }, KEY);
      count(res.status);
      if (res.status === 202) ids.push(res.body.job_id);
    }
  };
  const sync = async () => {
    for (let i = 0; i < 5; i++)
      count((await api.call('POST', '/v1/scrape', { url: `${target.origin}/n` }, KEY)).status);
  };
  const dashboard = async () => {
    for (let i = 0; i < 3; i++) count((await api.call('GET', '/dashboard/data', undefined, adminKey)).status);
  };
  await Promise.all([...Array.from({ length: 8 }, submitter), sync(), sync(), dashboard()]);
  const ends: Record<string, number> = {};
  let waited = 0;
  const waiter = async () => {
    while (waited < ids.length) {
      const id = ids[waited++]!;
      let status = 'queued';
      while (status === 'queued' || status === 'processing') {
        const res = await api.call('GET', `/v1/jobs/${id}?wait=30`, undefined, KEY);
        count(res.status);
        status = res.body.data?.status ?? `HTTP ${res.status}`;
      }
      ends[status] = (ends[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 10 }, waiter));
  return { answers, ends };
}

/** Its log lines at error level or above, and warnings of what failed (a refused or timed-out checkout). */
const troubles = (p: RoleProcess) =>
  p.output().match(/.*"level":(50|60).*|.*"level":40.*(failed|timeout|refused|could not|error).*/g) ?? [];

const budgetOf = (roles: ServiceRoles) => connectionBudget(loadConfig(env()), roles).total;

describe('connection budget', () => {
  test('the stated budgets with every pool at 2: api 7, worker 6, serve 9', () => {
    expect(budgetOf({ api: true, worker: false })).toBe(2 + 2 + 2 + 1);
    expect(budgetOf({ api: false, worker: true })).toBe(2 + 2 + 2);
    expect(budgetOf({ api: true, worker: true })).toBe(2 + 2 + 2 + 3);
    // The defaults, as docs/production-postgres.md states them.
    const defaults = loadConfig({});
    expect(connectionBudget(defaults, { api: true, worker: false }).total).toBe(20 + 10 + 4 + 1);
    expect(connectionBudget(defaults, { api: false, worker: true }).total).toBe(10 + 9 + 2);
    expect(connectionBudget(defaults, { api: true, worker: true }).total).toBe(20 + 9 + 4 + 3);
  });

  test('api and worker with every pool at 2 run the async flow with no error, each within its budget', async () => {
    const { worker, api } = await startWorkerAndApi(env(), running);
    const sampler = sampleConnections({ api: api.child.pid!, worker: worker.child.pid! });
    const { answers, ends } = await runFlow(api, 150);
    const { most, backends, seen } = await sampler.stop();
    await Promise.all([api.stop(), worker.stop()]);
    if (most.api! > budgetOf({ api: true, worker: false }))
      console.log(`[connections] over budget, api held:\n${seen.api!.join('\n')}`);

    expect(ends).toEqual({ completed: 150 });
    expect(Object.keys(answers).sort()).toEqual(['200', '202']);
    console.log(
      `[connections] pools of 2: api held at most ${most.api}, worker ${most.worker}; the database had ${backends} backends`,
    );
    expect(most.api).toBeLessThanOrEqual(budgetOf({ api: true, worker: false }));
    expect(most.worker).toBeLessThanOrEqual(budgetOf({ api: false, worker: true }));
    expect(backends).toBeLessThanOrEqual(
      budgetOf({ api: true, worker: false }) + budgetOf({ api: false, worker: true }),
    );
    // The sampling saw them work: more than their listening connections each.
    expect(most.api).toBeGreaterThan(1);
    expect(most.worker).toBeGreaterThan(2);
    expect([...troubles(api), ...troubles(worker)]).toEqual([]);
  });

  test('serve with every pool at 2 runs the async flow with no error, within its budget', async () => {
    const serve = await startApiRole(env(), 'serve');
    running.push(serve);
    const sampler = sampleConnections({ serve: serve.child.pid! });
    const { answers, ends } = await runFlow(serve, 60);
    const { most, backends } = await sampler.stop();
    await serve.stop();

    expect(ends).toEqual({ completed: 60 });
    expect(Object.keys(answers).sort()).toEqual(['200', '202']);
    console.log(
      `[connections] pools of 2: serve held at most ${most.serve}; the database had ${backends} backends`,
    );
    expect(most.serve).toBeLessThanOrEqual(budgetOf({ api: true, worker: true }));
    expect(backends).toBeLessThanOrEqual(budgetOf({ api: true, worker: true }));
    expect(most.serve).toBeGreaterThan(3);
    expect(troubles(serve)).toEqual([]);
  });
});
