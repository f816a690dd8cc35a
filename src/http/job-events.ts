import type { Request, Response } from 'express';
import { jobData } from '../jobs/job-view';
import { isTerminal, type JobWatchers } from '../jobs/job-watchers';
import type { JobForOwner } from '../store/statements/find-job-for-key';

/** A comment sent this often keeps proxies and clients from closing a quiet stream. */
const KEEP_ALIVE_MS = 15_000;

/**
 * An event's id: the job's `updated_at` in microseconds. Every status change sets it to its
 * transaction's time, and each change's transaction begins after the previous one committed, so
 * the ids of one job's events increase.
 */
export const eventIdOf = (job: JobForOwner): number => Number(job.updated_us);

/** `Last-Event-ID` as a number; 0 (everything is new) when absent or not one. */
function lastEventId(req: Request): number {
  const raw = req.get('last-event-id')?.trim();
  return raw && /^\d{1,16}$/.test(raw) ? Number(raw) : 0;
}

/** One Server-Sent Event: the job object as data, its event id. */
function eventText(job: JobForOwner): string {
  const data = jobData(job).split('\n').join('\ndata: ');
  return `id: ${eventIdOf(job)}\ndata: ${data}\n\n`;
}

/**
 * GET /v1/jobs/{id}/events for an owned job: Server-Sent Events, first the job as it is now (unless
 * the client's `Last-Event-ID` says it has that already), then one event each time a status notice
 * finds it changed, closing after the terminal one. Each event is a read from Postgres after the
 * change committed; changes that pass between two reads (queued to processing in a moment) show as
 * their latest. A client that already has the terminal event is answered 204, which tells an
 * EventSource to stop reconnecting.
 */
export function streamJobEvents(
  watchers: JobWatchers,
  req: Request,
  res: Response,
  job: JobForOwner,
  apiKeyId: string,
): void {
  let sent = lastEventId(req);
  if (isTerminal(job.status) && eventIdOf(job) <= sent) return void res.status(204).end();
  res
    .status(200)
    .set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      'X-Accel-Buffering': 'no',
    })
    .flushHeaders();

  let closed = false;
  let forgetStop: () => unknown = () => undefined;
  const close = () => {
    if (closed) return;
    closed = true;
    unwatch();
    forgetStop();
    clearInterval(keepAlive);
    res.end();
  };
  const send = (next: JobForOwner) => {
    if (closed) return;
    // Re-reads can finish out of order: an older state than the one sent is skipped.
    if (eventIdOf(next) > sent) {
      sent = eventIdOf(next);
      res.write(eventText(next));
    }
    if (isTerminal(next.status)) close();
  };
  const unwatch = watchers.watch(job.id, (row) => {
    if (row.api_key_id === apiKeyId) send(row);
  });
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
  res.once('close', close);
  forgetStop = watchers.onStop(close);
  send(job);
  // The job may have changed between the caller's read and the watch (its notice then came too early).
  if (!closed) void watchers.reread([job.id]);
}
