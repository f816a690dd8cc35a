import type { Request, Response } from 'express';
import type { z } from 'zod';
import type { batchSummary as batchSummarySchema } from '../contract/responses';
import type { ServiceContext } from '../context';
import type { BatchForOwner, BatchProgress } from '../db/batches';
import { JOB_STATUSES, type JobStatus } from '../db/schema';
import { lastEventIdOf, openEventStream, type EventStream } from './event-stream';
import type { HeldRequest } from './held-request';

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
 * status notices about its jobs, closing once none of its jobs is queued or processing. The counts
 * come from the batch's one shared reader (jobs/batch-progress.ts), whatever the number of its
 * streams. An event's id is its jobs' latest `updated_at` in microseconds, so a client
 * reconnecting with `Last-Event-ID` is sent the counts only if something changed since.
 */
export async function streamBatchEvents(
  ctx: Pick<ServiceContext, 'jobWatchers' | 'batchProgress'>,
  req: Request,
  res: Response,
  held: HeldRequest,
  batch: BatchForOwner,
): Promise<void> {
  let sent = lastEventIdOf(req.get('last-event-id'));
  // Counts read before the stream opens wait in `newer`.
  let stream: EventStream | undefined = undefined;
  let newer: BatchProgress | undefined;
  const send = (progress: BatchProgress) => {
    if (!stream) return void (newer = progress);
    if (progress.changedUs > sent) {
      sent = progress.changedUs;
      stream.send(sent, JSON.stringify(batchSummary(batch, progress)));
    }
    if (isDone(progress)) stream.close();
  };
  const follow = ctx.batchProgress.follow(batch.id, send);
  held.onStop(follow.stop);
  const first = await follow.latest.catch((err: unknown) => {
    follow.stop();
    // A client gone during the first read has no answer to be told of its failure.
    if (held.signal.aborted) return undefined;
    throw err;
  });
  if (!first || held.signal.aborted) return void held.stopAnswer();
  if (isDone(first) && first.changedUs <= sent) {
    follow.stop();
    return void res.status(204).end();
  }
  stream = openEventStream(res, ctx.jobWatchers, held, follow.stop);
  send(first);
  if (newer && !stream.closed) send(newer);
}
