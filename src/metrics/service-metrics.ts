import { LRUCache } from 'lru-cache';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../logger';
import type { PoolCounts } from '../db/pool';
import type { QueueDepthRow } from '../db/queue-depth';
import type { ListenerObserver } from '../db/notification-listener';

// Every metric omniscrape exports is defined in this file (docs/operations.md, Metrics, lists them). Labels
// name classes, never a key or a URL: the exposition may be open to anyone who reaches the port.

/** The route label of a request no route matched (an unknown path, or one refused before routing). */
export const UNMATCHED_ROUTE = '(none)';

/** How long a queue-depth count serves scrapes: Prometheus servers scraping at once share one. */
export const QUEUE_DEPTH_MAX_AGE_MS = 5_000;

/** What to read at scrape time: pool use and the queue depth, never anything on a request's path. */
export interface MetricSources {
  /** Each pool's counts by name (`store`, `reporting`, `pgboss`); null while it is not open. */
  pools?: Record<string, () => PoolCounts | null>;
  /** The queued and processing jobs by key class (a bounded query; see countQueueDepth). */
  queueDepth?: () => Promise<QueueDepthRow[]>;
}

/** A job's end as the metrics count it. */
export interface JobEnd {
  kind: 'sync' | 'async';
  status: string;
  errorCode: string | null;
  /** The target's HTTP status, when the scrape got an answer. */
  targetStatusCode?: number | null;
  /** When it first started (its run time is counted from then); unset for a job that never ran. */
  startedAt?: Date | null;
  /** The engine that produced its outcome; unset or null when no scrape ran. */
  engine?: 'http' | 'browser' | null;
}

/**
 * What the browser engine reports: the shape of scraper/browser-observer.ts's BrowserObserver
 * (metrics/ imports nothing of scraper/; test/metrics.test.ts holds the two to the same shape).
 */
export interface BrowserEvents {
  rendered(end: { ok: boolean; seconds: number; trigger: 'requested' | 'auto' }): void;
  restarted(reason: 'crashed' | 'hung'): void;
  pagesInFlight(count: number): void;
}

/**
 * The process-wide metrics of prom-client (CPU, memory, event loop, GC), registered once: they
 * describe the process, however many services it runs (tests run several in one).
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** Seconds between two instants, never negative (the API's clock and Postgres's may differ a little). */
const secondsBetween = (from: Date, to: Date) => Math.max(0, (to.getTime() - from.getTime()) / 1000);

/** 2xx … 5xx; anything else `other`. */
const statusClass = (code: number) => (code >= 100 && code < 600 ? `${Math.floor(code / 100)}xx` : 'other');

/**
 * The metrics of one service (its API and worker roles, whichever this process runs), in a
 * registry of its own with the process metrics beside it. Each process counts what happened in it:
 * a job submitted through one API process and run by a worker process is counted submitted by the
 * first and finished by the second, so sums over the processes are the service's totals.
 */
export class ServiceMetrics {
  readonly registry: Registry;
  readonly #own = new Registry();
  readonly #sources: MetricSources;
  readonly #logger: Logger | undefined;
  /** The queue depth as last counted (rows undefined: the count failed), kept QUEUE_DEPTH_MAX_AGE_MS. */
  readonly #queueDepth = new LRUCache<'depth', { rows: QueueDepthRow[] | undefined }>({
    max: 1,
    ttl: QUEUE_DEPTH_MAX_AGE_MS,
    fetchMethod: async () => ({ rows: await this.#countQueueDepth() }),
  });

  readonly #httpRequests = new Counter({
    name: 'omniscrape_http_requests_total',
    help: 'HTTP requests answered, by route pattern, method and status code.',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.#own],
  });
  readonly #httpDuration = new Histogram({
    name: 'omniscrape_http_request_duration_seconds',
    help: 'Time from a request received to its answer ended (sync scrapes, ?wait= and event streams included).',
    labelNames: ['route', 'method'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [this.#own],
  });
  readonly #submitted = new Counter({
    name: 'omniscrape_jobs_submitted_total',
    help: 'Jobs accepted by this process (a batch counts its jobs), by kind: sync or async.',
    labelNames: ['kind'] as const,
    registers: [this.#own],
  });
  readonly #finished = new Counter({
    name: 'omniscrape_jobs_finished_total',
    help: 'Jobs this process ended, by kind, final status and error code ("none" when completed).',
    labelNames: ['kind', 'status', 'error_code'] as const,
    registers: [this.#own],
  });
  readonly #finishedByEngine = new Counter({
    name: 'omniscrape_jobs_finished_by_engine_total',
    help: 'Jobs this process ended after a scrape ran, by kind, the engine that produced the outcome (http, browser) and final status.',
    labelNames: ['kind', 'engine', 'status'] as const,
    registers: [this.#own],
  });
  readonly #queueWait = new Histogram({
    name: 'omniscrape_job_queue_wait_seconds',
    help: "Async jobs' time from submitted to first started by a worker of this process.",
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [this.#own],
  });
  readonly #runTime = new Histogram({
    name: 'omniscrape_job_run_seconds',
    help: "Jobs' time from first started to ended (retries after a lost worker included), by kind.",
    labelNames: ['kind'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300],
    registers: [this.#own],
  });
  readonly #targetResponses = new Counter({
    name: 'omniscrape_target_responses_total',
    help: "Scrapes that got an answer from their target, by the answer's status class (2xx … 5xx).",
    labelNames: ['class'] as const,
    registers: [this.#own],
  });
  readonly #resultsPurged = new Counter({
    name: 'omniscrape_results_purged_total',
    help: 'Expired results deleted by the result purge runs of this process.',
    registers: [this.#own],
  });
  readonly #queueDepthErrors = new Counter({
    name: 'omniscrape_queue_depth_errors_total',
    help: 'Scrapes that could not count the queue depth (Postgres away or too slow); the depth is then left out.',
    registers: [this.#own],
    // Read after this scrape's count (shared with the depth gauge): a failure shows in the same scrape.
    collect: async () => {
      await this.#readQueueDepth();
    },
  });
  readonly #listenerConnected = new Gauge({
    name: 'omniscrape_listener_connected',
    help: "1 while the process's LISTEN connection is up, by listener: api (key and job notices), worker (new jobs).",
    labelNames: ['listener'] as const,
    registers: [this.#own],
  });
  readonly #listenerReconnects = new Counter({
    name: 'omniscrape_listener_reconnects_total',
    help: 'LISTEN connections opened again after one was lost, by listener.',
    labelNames: ['listener'] as const,
    registers: [this.#own],
  });

  readonly #browserRenders = new Counter({
    name: 'omniscrape_browser_renders_total',
    help: 'Pages rendered in headless Chromium by this process, by outcome (success, failure) and trigger: requested (js_rendering, mode "browser") or auto (mode "auto" found a script-built shell).',
    labelNames: ['outcome', 'trigger'] as const,
    registers: [this.#own],
  });
  readonly #browserRenderDuration = new Histogram({
    name: 'omniscrape_browser_render_duration_seconds',
    help: 'Time a render took in headless Chromium (the wait for a browser slot excluded).',
    buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60],
    registers: [this.#own],
  });
  readonly #browserRestarts = new Counter({
    name: 'omniscrape_browser_restarts_total',
    help: 'Headless Chromium started again after it crashed (its process ended) or hung (stopped answering).',
    labelNames: ['reason'] as const,
    registers: [this.#own],
  });
  readonly #browserPagesInFlight = new Gauge({
    name: 'omniscrape_browser_pages_in_flight',
    help: 'Pages this process is rendering in headless Chromium now.',
    registers: [this.#own],
  });

  constructor(sources: MetricSources = {}, logger?: Logger) {
    this.#sources = sources;
    this.#logger = logger;
    this.#definePoolGauges();
    this.#defineQueueDepthGauge();
    this.registry = Registry.merge([processMetrics(), this.#own]);
  }

  /** The exposition, in Prometheus's text format (`contentType`). */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  httpAnswered(route: string, method: string, status: number, seconds: number): void {
    this.#httpRequests.inc({ route, method, status: String(status) });
    this.#httpDuration.observe({ route, method }, seconds);
  }

  jobsSubmitted(kind: 'sync' | 'async', count = 1): void {
    this.#submitted.inc({ kind }, count);
  }

  /** An async job's first start; later attempts (after a lost worker) are not a new wait. */
  jobStarted(createdAt: Date, startedAt: Date): void {
    this.#queueWait.observe(secondsBetween(createdAt, startedAt));
  }

  jobEnded(end: JobEnd): void {
    this.jobsEnded(end, 1);
    if (end.startedAt) this.#runTime.observe({ kind: end.kind }, secondsBetween(end.startedAt, new Date()));
    if (end.targetStatusCode) this.#targetResponses.inc({ class: statusClass(end.targetStatusCode) });
    if (end.engine) this.#finishedByEngine.inc({ kind: end.kind, engine: end.engine, status: end.status });
  }

  /** Jobs ended together without running (cancelled) or without a run this process saw (abandoned). */
  jobsEnded(end: Pick<JobEnd, 'kind' | 'status' | 'errorCode'>, count: number): void {
    if (count <= 0) return;
    this.#finished.inc({ kind: end.kind, status: end.status, error_code: end.errorCode ?? 'none' }, count);
  }

  resultsPurged(count: number): void {
    this.#resultsPurged.inc(count);
  }

  /** What a LISTEN connection reports to keep its gauge and reconnect count. */
  listenerObserver(listener: 'api' | 'worker'): ListenerObserver {
    let connectedBefore = false;
    this.#listenerConnected.set({ listener }, 0);
    this.#listenerReconnects.inc({ listener }, 0);
    return {
      connected: () => {
        if (connectedBefore) this.#listenerReconnects.inc({ listener });
        connectedBefore = true;
        this.#listenerConnected.set({ listener }, 1);
      },
      lost: () => this.#listenerConnected.set({ listener }, 0),
    };
  }

  /**
   * What the browser engine of this process reports (its BrowserObserver). The render and restart
   * counters' series start at 0 from this call, so a process that has rendered nothing yet shows
   * each of them (the histogram and the gauge, unlabelled, show from the start).
   */
  browserObserver(): BrowserEvents {
    for (const outcome of ['success', 'failure'])
      for (const trigger of ['requested', 'auto']) this.#browserRenders.inc({ outcome, trigger }, 0);
    for (const reason of ['crashed', 'hung']) this.#browserRestarts.inc({ reason }, 0);
    this.#browserPagesInFlight.set(0);
    return {
      rendered: ({ ok, seconds, trigger }) => {
        this.#browserRenders.inc({ outcome: ok ? 'success' : 'failure', trigger });
        this.#browserRenderDuration.observe(seconds);
      },
      restarted: (reason) => this.#browserRestarts.inc({ reason }),
      pagesInFlight: (count) => this.#browserPagesInFlight.set(count),
    };
  }

  #definePoolGauges(): void {
    const pools = Object.entries(this.#sources.pools ?? {});
    const gauge = (name: string, help: string, field: keyof PoolCounts) =>
      new Gauge({
        name,
        help,
        labelNames: ['pool'] as const,
        registers: [this.#own],
        collect() {
          this.reset();
          for (const [pool, counts] of pools) {
            const value = counts()?.[field];
            if (value !== undefined) this.set({ pool }, value);
          }
        },
      });
    gauge('omniscrape_db_pool_max_connections', 'Most connections each Postgres pool may open.', 'max');
    gauge(
      'omniscrape_db_pool_connections',
      'Connections each Postgres pool holds open (busy and idle).',
      'total',
    );
    gauge('omniscrape_db_pool_idle_connections', 'Open connections of each pool that are idle.', 'idle');
    gauge(
      'omniscrape_db_pool_waiting_clients',
      'Queries and transactions waiting for a connection of each pool (all in use).',
      'waiting',
    );
  }

  #defineQueueDepthGauge(): void {
    const depth = () => this.#readQueueDepth();
    new Gauge({
      name: 'omniscrape_queue_depth',
      help: 'Jobs queued and processing in the whole database (the same from every process), by key class: key_limit="own" for keys with a concurrency limit of their own, "default" for the others.',
      labelNames: ['status', 'key_limit'] as const,
      registers: [this.#own],
      async collect() {
        this.reset();
        const rows = await depth();
        if (!rows) return;
        for (const status of ['queued', 'processing'])
          for (const ownLimit of [false, true]) {
            const row = rows.find((r) => r.status === status && r.own_limit === ownLimit);
            this.set({ status, key_limit: ownLimit ? 'own' : 'default' }, row?.jobs ?? 0);
          }
      },
    });
  }

  /**
   * The queue depth, counted at most every QUEUE_DEPTH_MAX_AGE_MS (scrapes meanwhile share the
   * count); undefined when it could not be.
   */
  async #readQueueDepth(): Promise<QueueDepthRow[] | undefined> {
    if (!this.#sources.queueDepth) return undefined;
    return (await this.#queueDepth.forceFetch('depth')).rows;
  }

  async #countQueueDepth(): Promise<QueueDepthRow[] | undefined> {
    try {
      return await this.#sources.queueDepth?.();
    } catch (err) {
      // Not rethrown: the rest of the exposition still answers; the counter tells the failures.
      this.#queueDepthErrors.inc();
      this.#logger?.debug({ err }, 'could not count the queue depth for /metrics');
      return undefined;
    }
  }
}
