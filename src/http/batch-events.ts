import type { Request, Response } from 'express';
import type { z } from 'zod';
import type { batchSummary as batchSummarySchema } from '../contract/responses';
import type { JobWatchers } from '../jobs/job-watchers';
import type { Logger } from '../logger';
import { batchJobIds, batchProgress, type BatchForOwner, type BatchProgress } from '../store/batches';
import { JOB_STATUSES, type Db, type JobStatus } from '../store/schema';
import { lastEventIdOf, openEventStream } from './event-stream';

type BatchSummary = z.input<typeof batchSummarySchema>;

/** The body of a batch's answer and events: its counts per status, every status named. */
export function batchSummary(batch: BatchForOwner, progress: BatchProgress): BatchSummary {
  return {
    batch_id: batch.id,
    created_at: batch.created_at.toISOString(),
    total: batch.job_count,
    counts: {
      ...(Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>),
      ...progress.counts,
    },
  };
}

const isDone = (progress: BatchProgress) => !progress.counts.queued && !progress.counts.processing;

/**
 * GET /v1/batches/{id}/events: Server-Sent Events of a batch's progress, its counts per status.
 * The current counts first (unless `Last-Event-ID` says the client has them), then new counts after
 * status notices about its jobs (re-read from Postgres, at most one read at a time, changes that
 * arrive meanwhile folded into the next), closing once none of its jobs is queued or processing.
 * An event's id is its jobs' latest `updated_at` in microseconds, so a client reconnecting with
 * `Last-Event-ID` is sent the counts only if something changed since.
 */
export async function streamBatchEvents(
  ctx: { db: Db; jobWatchers: JobWatchers; logger: Logger },
  req: Request,
  res: Response,
  batch: BatchForOwner,
): Promise<void> {
  let sent = lastEventIdOf(req.get('last-event-id'));
  const first = await batchProgress(ctx.db, batch.id);
  if (isDone(first) && first.changedUs <= sent) return void res.status(204).end();
  const jobIds = await batchJobIds(ctx.db, batch.id);
  const unwatch: (() => void)[] = [];
  const stream = openEventStream(res, ctx.jobWatchers, () => unwatch.forEach((forget) => forget()));
  const send = (progress: BatchProgress) => {
    if (progress.changedUs > sent) {
      sent = progress.changedUs;
      stream.send(sent, JSON.stringify(batchSummary(batch, progress)));
    }
    if (isDone(progress)) stream.close();
  };
  let reading = false;
  let again = false;
  const refresh = async (): Promise<void> => {
    if (reading) return void (again = true);
    reading = true;
    try {
      do {
        again = false;
        send(await batchProgress(ctx.db, batch.id));
      } while (again && !stream.closed);
    } catch (err) {
      // Not rethrown: the next notice (or a reconnect's re-read) reads the counts again.
      ctx.logger.warn({ err, batchId: batch.id }, "could not read a batch's progress");
    } finally {
      reading = false;
    }
  };
  for (const id of jobIds) unwatch.push(ctx.jobWatchers.watch(id, () => void refresh()));
  send(first);
  // Jobs may have changed between the first read and the watches.
  if (!stream.closed) void refresh();
}
