import { randomUUID } from 'node:crypto';
import type { ServiceContext } from '../context';
import { concurrencyLimitReached, ScrapeFailure } from '../domain-errors';
import type { ScrapeRequest } from '../scraper/scrape-request';
import type { ApiKeyIdentity } from '../db/api-keys';
import { recordSuccessfulScrapes } from '../db/key-limits-queries';
import { finishSyncScrapeJob } from '../db/statements/finish-scrape-jobs';
import { insertSyncScrapeJob } from '../db/statements/insert-sync-scrape-job';
import { lockAndCountKeySlots } from '../db/statements/lock-and-count-key-slots';
import { checkMonthlyQuota, limitsOf, slotLeases } from './key-limits';
import { requestColumns } from './history-row';
import {
  failureBody,
  jobEndOf,
  outcomeOf,
  successBody,
  type ScrapeFailureBody,
  type ScrapeSuccessBody,
} from './outcome';

type SyncScrapeContext = Pick<
  ServiceContext,
  'store' | 'scraper' | 'config' | 'logger' | 'syncLeases' | 'metrics'
>;

/** Where a sync scrape comes from: its request's id, and a signal that the client hung up. */
export interface SyncScrapeOrigin {
  /** X-Request-Id, recorded in the history row. */
  requestId?: string;
  clientGone?: AbortSignal;
}

/**
 * Runs a scrape in the API process. It holds one of the key's concurrency slots while it runs: its
 * history row (kind `sync`) is `processing` meanwhile, so sync and async scrapes share the limit,
 * and reporting and billing see both alike. The result itself is returned, not stored.
 *
 * The slot cannot leak: the row's lease (SyncScrapeLeases) is renewed only while this runs, so a
 * scrape whose process dies frees its slot within OMNISCRAPE_SYNC_LEASE_SECONDS; and a scrape that
 * throws, or whose outcome cannot be written, ends its row `failed` (INTERNAL_ERROR) on the way out
 * — or, if Postgres cannot take even that, lets the lease lapse.
 */
export async function runSyncScrape(
  ctx: SyncScrapeContext,
  key: ApiKeyIdentity,
  request: ScrapeRequest,
  { requestId, clientGone }: SyncScrapeOrigin = {},
): Promise<ScrapeSuccessBody | ScrapeFailureBody> {
  const { db } = ctx.store;
  const limits = limitsOf(key, ctx.config);
  await checkMonthlyQuota(db, key, limits);
  const jobId = randomUUID();
  const startedAt = new Date();
  await db.transaction().execute(async (trx) => {
    const slots = await lockAndCountKeySlots(trx, [key.id], [], slotLeases(ctx.config));
    if ((slots.get(key.id)?.processing ?? 0) >= limits.concurrency)
      throw concurrencyLimitReached(limits.concurrency);
    await insertSyncScrapeJob(trx, {
      ...requestColumns(jobId, key.id, request),
      started_at: startedAt,
      request_id: requestId ?? null,
    });
  });
  ctx.metrics.jobsSubmitted('sync');

  ctx.syncLeases.hold(jobId);
  try {
    const body = await scrape(ctx, request, key.id, clientGone);
    await recordOutcome(ctx, jobId, startedAt, body);
    // The outcome is committed: a failure to count it must not turn a delivered scrape into an error.
    if (body.success) {
      await recordSuccessfulScrapes(db, new Map([[key.id, 1]])).catch((err: unknown) =>
        ctx.logger.warn(
          { err, jobId, apiKeyId: key.id },
          'could not count a successful sync scrape against its monthly quota',
        ),
      );
    }
    return body;
  } catch (err) {
    await endUnrecorded(ctx, jobId, startedAt);
    throw err; // the caller (the API) answers and logs it
  } finally {
    ctx.syncLeases.release(jobId);
  }
}

/** The page, or the documented failure of a scrape that could not complete; anything else throws. */
async function scrape(
  ctx: SyncScrapeContext,
  request: ScrapeRequest,
  owner: string,
  clientGone?: AbortSignal,
): Promise<ScrapeSuccessBody | ScrapeFailureBody> {
  const started = performance.now();
  try {
    const scraped = await ctx.scraper.scrape(request, { signal: clientGone, owner });
    return successBody(scraped, performance.now() - started, ctx.config);
  } catch (err) {
    if (!(err instanceof ScrapeFailure)) throw err;
    // The client hung up (or the server is stopping): the scrape was abandoned, not the target's fault.
    const failure = clientGone?.aborted
      ? new ScrapeFailure(
          'CLIENT_DISCONNECTED',
          'The client closed the connection before the scrape finished.',
        )
      : err;
    return failureBody(failure, performance.now() - started);
  }
}

/** Writes the outcome (and counts it, unless the row had ended meanwhile as abandoned). */
async function recordOutcome(
  ctx: SyncScrapeContext,
  jobId: string,
  startedAt: Date,
  body: ScrapeSuccessBody | ScrapeFailureBody,
): Promise<void> {
  const outcome = outcomeOf(body);
  if (await finishSyncScrapeJob(ctx.store.db, jobId, outcome))
    ctx.metrics.jobEnded(jobEndOf('sync', outcome, startedAt));
}

/**
 * Ends the row of a scrape whose outcome was not recorded (the client gets an error answer for
 * it), so its slot frees now rather than when its lease lapses. If this fails too, it is logged
 * and the lease lapses; the caller rethrows the original error.
 */
async function endUnrecorded(ctx: SyncScrapeContext, jobId: string, startedAt: Date): Promise<void> {
  try {
    const ended = await finishSyncScrapeJob(ctx.store.db, jobId, {
      status: 'failed',
      error_code: 'INTERNAL_ERROR',
      error_message: 'The scrape stopped on an unexpected error; it has been logged.',
      charged: 0,
    });
    if (ended)
      ctx.metrics.jobEnded({ kind: 'sync', status: 'failed', errorCode: 'INTERNAL_ERROR', startedAt });
  } catch (err) {
    ctx.logger.warn(
      { err, jobId, leaseSeconds: ctx.syncLeases.leaseSeconds },
      "could not end a sync scrape's history row after an error; its slot frees when its lease lapses",
    );
  }
}
