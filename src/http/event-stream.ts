import type { Response } from 'express';
import type { JobWatchers } from '../jobs/job-watchers';
import type { HeldRequest } from './held-request';

/** A comment sent this often keeps proxies and clients from closing a quiet stream. */
const KEEP_ALIVE_MS = 15_000;

export interface EventStream {
  /** Sends one event: its id and its data (JSON text). */
  send(id: number, data: string): void;
  /** Ends the stream (once). */
  close(): void;
  readonly closed: boolean;
}

/**
 * Opens a Server-Sent Events answer of a held request: the headers, a keep-alive comment every
 * 15 s, and an end when the request stops (its client left, its key was revoked) or the process
 * stops (`onClose` then runs once, to forget what the stream watched).
 */
export function openEventStream(
  res: Response,
  watchers: JobWatchers,
  held: HeldRequest,
  onClose: () => void,
): EventStream {
  res
    .status(200)
    .set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      'X-Accel-Buffering': 'no',
    })
    .flushHeaders();
  let closed = false;
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(keepAlive);
    forgetStop();
    onClose();
    res.end();
  };
  const forgetStop = watchers.onStop(close);
  held.onStop(close);
  return {
    send(id, data) {
      if (!closed) res.write(`id: ${id}\ndata: ${data.split('\n').join('\ndata: ')}\n\n`);
    },
    close,
    get closed() {
      return closed;
    },
  };
}

/** `Last-Event-ID` as a number; 0 (everything is new) when absent or not one. */
export function lastEventIdOf(header: string | undefined): number {
  const raw = header?.trim();
  return raw && /^\d{1,16}$/.test(raw) ? Number(raw) : 0;
}
