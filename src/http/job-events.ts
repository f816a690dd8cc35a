import type { Request, Response } from 'express';
import { jobData } from '../jobs/job-view';
import { isTerminal } from '../contract/errors';
import type { JobWatchers } from '../jobs/job-watchers';
import type { JobForOwner } from '../db/statements/find-job-for-key';
import { lastEventIdOf, openEventStream } from './event-stream';
import type { HeldRequest } from './held-request';

/**
 * An event's id: the job's `updated_at` in microseconds. Every status change sets it to its
 * transaction's time, and each change's transaction begins after the previous one committed, so
 * the ids of one job's events increase.
 */
export const eventIdOf = (job: JobForOwner): number => Number(job.updated_us);

/**
 * GET /v1/jobs/{id}/events for an owned job: Server-Sent Events, first the job as it is now (unless
 * the client's `Last-Event-ID` says it has that already), then one event each time a status notice
 * finds it changed, closing after the terminal one. Each event is a read from Postgres after the
 * change committed; changes that pass between two reads (queued to processing in a moment) show as
 * their latest. A client that already has the terminal event is answered 204, which tells an
 * EventSource to stop reconnecting. `held` must not have stopped yet (the caller checks after its reads).
 */
export function streamJobEvents(
  watchers: JobWatchers,
  req: Request,
  res: Response,
  held: HeldRequest,
  job: JobForOwner,
  apiKeyId: string,
): void {
  let sent = lastEventIdOf(req.get('last-event-id'));
  if (isTerminal(job.status) && eventIdOf(job) <= sent) return void res.status(204).end();
  let unwatch: () => void = () => undefined;
  const stream = openEventStream(res, watchers, held, () => unwatch());
  const send = (next: JobForOwner) => {
    if (stream.closed) return;
    // Re-reads can finish out of order: an older state than the one sent is skipped.
    if (eventIdOf(next) > sent) {
      sent = eventIdOf(next);
      stream.send(sent, jobData(next));
    }
    if (isTerminal(next.status)) stream.close();
  };
  unwatch = watchers.watch(job.id, (row) => {
    if (row.api_key_id === apiKeyId) send(row);
  });
  send(job);
  // The job may have changed between the caller's read and the watch (its notice then came too early).
  if (!stream.closed) void watchers.reread([job.id]);
}
