/**
 * The BullMQ baseline's figures, on Redis or on BullMQ's own Postgres backend: the same clients,
 * page and worker concurrency as omniscrape's gateway, and the same counters (CPU of the gateway
 * and of the store's processes, WAL when the store is Postgres) around each end-to-end run.
 */
import { apiClient, endToEnd, idleLatency, median, requestsPerSecond } from './clients';
import { measureJobCost, processCpu, type CpuCounter } from './cpu-counters';
import { startBullmqGateway, type BullmqStore } from './processes';

export interface BullmqBaselineOptions {
  store: BullmqStore;
  /** CPU seconds of every process of the store (redis-server, or the Postgres server). */
  storeCpu: CpuCounter;
  /** The database whose server's WAL is counted (the Postgres store), or none. */
  walDatabaseUrl?: string;
  page: string;
  apiKey: string;
  workerConcurrency: string;
  jobs: number;
  runs: number;
  loadSeconds: number;
  /** Idle latency samples taken on the first run's gateway after as many warm-up samples (0: none). */
  idleSamples: number;
  log: (line: string) => void;
}

export interface BullmqBaselineFigures {
  e2eJobsPerSecond: number;
  submitPerSecond: number;
  gatewayCpuMsPerJob: number;
  storeCpuMsPerJob: number;
  walBytesPerJob?: number;
  idleLatencyMs: number[];
}

/** `runs` rounds of: a fresh baseline gateway, end to end with its cost per job, then single submits; medians. */
export async function bullmqBaseline(options: BullmqBaselineOptions): Promise<BullmqBaselineFigures> {
  const { store, page, apiKey, jobs, runs, log } = options;
  const rounds: { e2e: number; submit: number; gateway: number; store: number; wal?: number }[] = [];
  let idleLatencyMs: number[] = [];
  for (let run = 1; run <= runs; run++) {
    const gateway = await startBullmqGateway(store, { WORKER_CONCURRENCY: options.workerConcurrency });
    const client = apiClient(gateway.baseUrl, apiKey);
    try {
      await idleLatency(client, page, 5); // warm-up
      if (run === 1 && options.idleSamples > 0) {
        log('BullMQ idle latency');
        // The first jobs after a start run slower, as omniscrape's do: the figure is the next samples'.
        await idleLatency(client, page, options.idleSamples);
        idleLatencyMs = await idleLatency(client, page, options.idleSamples);
      }
      log(`BullMQ end to end, ${jobs} jobs (run ${run}/${runs})`);
      const e2e = await measureJobCost(
        { gateway: processCpu(gateway.process.pid!), store: options.storeCpu },
        options.walDatabaseUrl,
        jobs,
        () => endToEnd(client, page, jobs),
      );
      log(`BullMQ single submits (run ${run}/${runs})`);
      const submit = await requestsPerSecond(
        `${gateway.baseUrl}/v1/scrape/async`,
        { url: page },
        apiKey,
        options.loadSeconds,
      );
      await waitForBacklog(gateway.baseUrl);
      rounds.push({
        e2e: e2e.result.jobsPerSecond,
        submit,
        gateway: e2e.cpuMsPerJob.gateway,
        store: e2e.cpuMsPerJob.store,
        wal: e2e.walBytesPerJob,
      });
    } finally {
      await client.close();
      await gateway.stop();
    }
  }
  const wal = rounds.flatMap((r) => (r.wal === undefined ? [] : [r.wal]));
  return {
    e2eJobsPerSecond: median(rounds.map((r) => r.e2e)),
    submitPerSecond: median(rounds.map((r) => r.submit)),
    gatewayCpuMsPerJob: median(rounds.map((r) => r.gateway)),
    storeCpuMsPerJob: median(rounds.map((r) => r.store)),
    walBytesPerJob: wal.length > 0 ? median(wal) : undefined,
    idleLatencyMs,
  };
}

/** Waits until the baseline's queue holds no job waiting or active, so the next run starts on an empty queue. */
async function waitForBacklog(baseUrl: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { jobs } = (await (await fetch(`${baseUrl}/bench/backlog`)).json()) as { jobs: number };
    if (jobs === 0) return;
    if (Date.now() > deadline) throw new Error(`the BullMQ baseline still holds ${jobs} jobs`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
