/**
 * The CPU and WAL a scenario costs per job, from the processes' own counters: /proc/<pid>/stat for
 * CPU (bench/process-tree.ts), pg_current_wal_lsn() for the WAL Postgres wrote meanwhile.
 */
import pg from 'pg';
import { parentOf, treeCpuSeconds } from './process-tree';

/** A counter of CPU seconds used so far (only differences mean anything). */
export type CpuCounter = () => number;

/** The postmaster of the server behind `databaseUrl`: the parent of this session's backend process. */
export async function postmasterPid(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const backend = (await client.query('select pg_backend_pid() as pid')).rows[0].pid as number;
    const postmaster = parentOf(backend);
    if (postmaster === undefined) throw new Error(`no process ${backend}: is Postgres on another machine?`);
    return postmaster;
  } finally {
    await client.end();
  }
}

/**
 * Every Postgres process's CPU: the postmaster's own, that of its children that ended (cutime,
 * cstime: backends of closed sessions), and its running children's (backends, walwriter,
 * checkpointer, autovacuum).
 */
export const postgresCpu =
  (postmaster: number): CpuCounter =>
  () =>
    treeCpuSeconds(postmaster);

/** A process and anything it started. */
export const processCpu =
  (pid: number): CpuCounter =>
  () =>
    treeCpuSeconds(pid);

export interface JobCost<T, K extends string> {
  result: T;
  /** CPU milliseconds per job of each counter, over the whole of `work`. */
  cpuMsPerJob: Record<K, number>;
  /** WAL bytes per job the server wrote over the whole of `work` (every database on it); undefined without a database. */
  walBytesPerJob?: number;
}

/** Runs `work` (which handles `jobs` jobs) and answers what it cost per job on each counter and in WAL. */
export async function measureJobCost<T, K extends string>(
  counters: Record<K, CpuCounter>,
  walDatabaseUrl: string | undefined,
  jobs: number,
  work: () => Promise<T>,
): Promise<JobCost<T, K>> {
  // The session that reads the WAL position opens before the CPU counters are read, so its start is not counted.
  const client = walDatabaseUrl ? new pg.Client({ connectionString: walDatabaseUrl }) : undefined;
  await client?.connect();
  try {
    const walBefore = client && (await walPosition(client));
    const names = Object.keys(counters) as K[];
    const before = names.map((name) => counters[name]());
    const result = await work();
    const after = names.map((name) => counters[name]());
    const walAfter = client && (await walPosition(client));
    const cpuMsPerJob = Object.fromEntries(
      names.map((name, i) => [name, ((after[i]! - before[i]!) * 1000) / jobs]),
    ) as Record<K, number>;
    const walBytesPerJob =
      client && walBefore !== undefined && walAfter !== undefined
        ? Number(
            (await client.query('select pg_wal_lsn_diff($1, $2) as bytes', [walAfter, walBefore])).rows[0]
              .bytes,
          ) / jobs
        : undefined;
    return { result, cpuMsPerJob, walBytesPerJob };
  } finally {
    await client?.end();
  }
}

async function walPosition(client: pg.Client): Promise<string> {
  return (await client.query('select pg_current_wal_lsn()::text as lsn')).rows[0].lsn;
}
