import { setTimeout as sleep } from 'node:timers/promises';
import type { z } from 'zod';
import { isTerminal, type JobStatus } from '../contract/errors';
import { MAX_WAIT_SECONDS } from '../contract/requests';
import type { asyncScrapeRequest, scrapeRequest } from '../contract/requests';
import type { batchAccepted, job, jobAccepted, scrapeFailure, scrapeSuccess } from '../contract/responses';
import { OmniscrapeError } from './errors';
import { scrapeMany, type ScrapeManyOptions } from './scrape-many';
import { call, type TransportOptions } from './transport';

export type ScrapeRequest = z.input<typeof scrapeRequest>;
export type AsyncScrapeRequest = z.input<typeof asyncScrapeRequest>;
/**
 * GET /v1/jobs's filters (the iterator follows `cursor` itself): typed values, or the strings the
 * query string carries (`status: 'failed,timed_out'`, `limit: '50'`); the server checks the values.
 */
export interface ListJobsQuery {
  status?: JobStatus | JobStatus[] | `${JobStatus},${string}`;
  since?: Date | string;
  until?: Date | string;
  /** Jobs per page (1 to 1000). */
  limit?: number | string;
}

/** The query string of a ListJobsQuery. */
function listParams(query: ListJobsQuery): URLSearchParams {
  const params = new URLSearchParams();
  const text = (value: Date | string | number) =>
    value instanceof Date ? value.toISOString() : String(value);
  if (query.status !== undefined)
    params.set('status', Array.isArray(query.status) ? query.status.join(',') : query.status);
  if (query.since !== undefined) params.set('since', text(query.since));
  if (query.until !== undefined) params.set('until', text(query.until));
  if (query.limit !== undefined) params.set('limit', text(query.limit));
  return params;
}
/** POST /v1/scrape's 200 or its 502: a target that could not be scraped is an outcome, not a throw. */
export type ScrapeResult = z.infer<typeof scrapeSuccess> | z.infer<typeof scrapeFailure>;
export type Job = z.infer<typeof job>;
export type JobAccepted = z.infer<typeof jobAccepted>;
export type BatchAccepted = z.infer<typeof batchAccepted>;

const OUTAGE_FIRST_BACKOFF_MS = 250;
const OUTAGE_MAX_BACKOFF_MS = 5_000;

/** The gateway is away (not reached, or unavailable past the retries), rather than saying no. */
const isOutage = (error: unknown) =>
  error instanceof OmniscrapeError && (error.code === 'NETWORK_ERROR' || error.status === 503);

export interface ClientOptions {
  baseUrl: string;
  apiKey: string;
  /** Retries per call of a 429/503, each after its Retry-After (default 3). */
  retries?: number;
}

/** The omniscrape API from TypeScript; its types are the server's own zod schemas. */
export class OmniscrapeClient {
  private readonly transport: TransportOptions;

  constructor(options: ClientOptions) {
    this.transport = { baseUrl: options.baseUrl, apiKey: options.apiKey, retries: options.retries ?? 3 };
  }

  /** Scrapes one page while the caller waits. */
  async scrape(req: ScrapeRequest): Promise<ScrapeResult> {
    const res = await call(this.transport, 'POST', '/v1/scrape', { body: req, accept: [200, 502] });
    return res.body as ScrapeResult;
  }

  /** Queues one scrape; the same `idempotencyKey` within 24 hours answers the same job. */
  async submit(req: AsyncScrapeRequest, opts: { idempotencyKey?: string } = {}): Promise<JobAccepted> {
    const headers = opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : undefined;
    const res = await call(this.transport, 'POST', '/v1/scrape/async', {
      body: req,
      headers,
      accept: [200, 202],
    });
    return res.body as JobAccepted;
  }

  /**
   * Queues many scrapes as one batch; `webhook` applies to the items without their own, `retries`
   * replaces the client's retries of a 429/503 for this call.
   */
  async submitBatch(
    requests: AsyncScrapeRequest[],
    opts: { webhook?: AsyncScrapeRequest['webhook']; retries?: number } = {},
  ): Promise<BatchAccepted> {
    const body = { requests, ...(opts.webhook ? { webhook: opts.webhook } : {}) };
    const res = await call(this.transport, 'POST', '/v1/scrape/batch', {
      body,
      accept: [200, 202],
      retries: opts.retries,
    });
    return res.body as BatchAccepted;
  }

  async getJob(id: string): Promise<Job> {
    return this.jobAt(`/v1/jobs/${encodeURIComponent(id)}`);
  }

  /**
   * Resolves with the job once it has ended. Each poll is held by the server (`?wait=`) until the
   * job ends or the wait runs out, so no poll interval is needed. A gateway that cannot be reached
   * (a restart, a deploy) is asked again with backoff, for up to `outageMs` (default 1 minute).
   */
  async waitForJob(
    id: string,
    opts: { timeoutMs?: number; outageMs?: number; signal?: AbortSignal } = {},
  ): Promise<Job> {
    const deadline = Date.now() + (opts.timeoutMs ?? 5 * 60_000);
    const outageMs = opts.outageMs ?? 60_000;
    let outageSince: number | undefined;
    let backoffMs = OUTAGE_FIRST_BACKOFF_MS;
    for (;;) {
      const leftSeconds = Math.min(MAX_WAIT_SECONDS, Math.ceil((deadline - Date.now()) / 1000));
      let found: Job;
      try {
        found = await this.jobAt(
          `/v1/jobs/${encodeURIComponent(id)}?wait=${Math.max(1, leftSeconds)}`,
          opts.signal,
        );
        outageSince = undefined;
        backoffMs = OUTAGE_FIRST_BACKOFF_MS;
      } catch (error) {
        outageSince ??= Date.now();
        if (!isOutage(error) || Date.now() - outageSince >= outageMs) throw error;
        await sleep(backoffMs, undefined, { signal: opts.signal });
        backoffMs = Math.min(backoffMs * 2, OUTAGE_MAX_BACKOFF_MS);
        continue;
      }
      if (isTerminal(found.status)) return found;
      if (Date.now() >= deadline) {
        throw new OmniscrapeError(0, 'WAIT_TIMEOUT', `Job ${id} is still ${found.status}`, found.status);
      }
    }
  }

  /** Cancels a queued job; a job already started is refused with JOB_NOT_CANCELLABLE. */
  async cancel(id: string): Promise<Job> {
    const res = await call(this.transport, 'DELETE', `/v1/jobs/${encodeURIComponent(id)}`);
    return (res.body as { data: Job }).data;
  }

  /** The key's jobs, newest first, fetching page after page as the loop asks for more. */
  async *listJobs(query: ListJobsQuery = {}): AsyncGenerator<Job[], void, undefined> {
    let cursor: string | null | undefined;
    do {
      const params = listParams(query);
      if (cursor) params.set('cursor', cursor);
      const res = await call(this.transport, 'GET', `/v1/jobs?${params.toString()}`);
      const page = res.body as { data: Job[]; next_cursor: string | null };
      yield page.data;
      cursor = page.next_cursor;
    } while (cursor);
  }

  /** Scrapes many URLs as batched jobs, yielding each job as it ends (see scrape-many.ts). */
  scrapeMany(
    requests: Array<string | AsyncScrapeRequest>,
    options?: ScrapeManyOptions,
  ): AsyncGenerator<Job, void, undefined> {
    return scrapeMany(this, requests, options);
  }

  private async jobAt(path: string, signal?: AbortSignal): Promise<Job> {
    const res = await call(this.transport, 'GET', path, { signal });
    return (res.body as { data: Job }).data;
  }
}
