/**
 * What waiting costs a shared Postgres: its CPU per second (% of one core) while idle `omniscrape
 * worker` and `omniscrape api` processes with default settings wait on one database, measured
 * after they settled; and the same server with none of them running, as the reference.
 */
import { postgresCpu } from './cpu-counters';
import { startGateway, startWorker, type Child } from './processes';

export interface IdleProcessesOptions {
  databaseUrl: string;
  postmaster: number;
  /** Settings every process gets (API keys); the rest are the defaults. */
  env: Record<string, string>;
  workers: number;
  apis: number;
  /** How long the processes run before the measurement starts (start-up work, first polls). */
  settleSeconds: number;
  measureSeconds: number;
  log: (line: string) => void;
}

export interface IdleProcessesFigures {
  idle_pg_cpu_pct: number;
  /** The same server with no omniscrape process running. */
  idle_pg_cpu_pct_none: number;
}

const round = (n: number) => Number(n.toFixed(2));
const sleep = (seconds: number) => new Promise((r) => setTimeout(r, seconds * 1000));

/** Postgres CPU over `seconds` of wall time, in % of one core. */
async function postgresCpuPercent(postmaster: number, seconds: number): Promise<number> {
  const cpu = postgresCpu(postmaster);
  const before = cpu();
  const started = performance.now();
  await sleep(seconds);
  return ((cpu() - before) * 100 * 1000) / (performance.now() - started);
}

export async function idleProcesses(options: IdleProcessesOptions): Promise<IdleProcessesFigures> {
  const { postmaster, measureSeconds, log } = options;
  log(`Postgres CPU with no omniscrape process (${measureSeconds} s)`);
  const none = await postgresCpuPercent(postmaster, measureSeconds);
  const children: Child[] = [];
  try {
    log(
      `starting ${options.apis} idle omniscrape api and ${options.workers} idle omniscrape worker processes`,
    );
    // One after another: each `api` start migrates the database first (as a deploy would).
    for (let i = 0; i < options.apis; i++)
      children.push(await startGateway(options.databaseUrl, options.env, [], 'api'));
    const workers = await Promise.allSettled(
      Array.from({ length: options.workers }, () => startWorker(options.databaseUrl, options.env)),
    );
    for (const worker of workers) if (worker.status === 'fulfilled') children.push(worker.value);
    const failed = workers.find((worker) => worker.status === 'rejected');
    if (failed) throw failed.reason;
    await sleep(options.settleSeconds);
    log(`Postgres CPU with them idle (${measureSeconds} s)`);
    const idle = await postgresCpuPercent(postmaster, measureSeconds);
    return {
      idle_pg_cpu_pct: round(idle),
      idle_pg_cpu_pct_none: round(none),
    };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
  }
}
