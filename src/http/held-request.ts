import type { Request, Response } from 'express';
import type { HeldRequests } from '../jobs/held-requests';
import { apiKeyOf } from './auth';
import { tooManyStreams, unauthorized } from './errors';

/** A request that holds its connection (an event stream, a `?wait=`), from its first line on. */
export interface HeldRequest {
  /**
   * Aborted once the request is to stop: its client left (or its answer ended), or its key was
   * revoked. Check it after every await; a request whose signal is aborted answers nothing more
   * (`stopAnswer`).
   */
  readonly signal: AbortSignal;
  /** Runs `forget` once the request stops (at once if it has): what it watches, its timers. */
  onStop(forget: () => void): void;
  /**
   * After `signal` aborted: throws the 401 a revoked key gets while no answer was begun; else
   * there is nothing left to answer (the client left, or a begun stream was ended).
   */
  stopAnswer(): void;
}

/**
 * Holds a request of the authenticated key in one of the process's HeldRequests slots, before any
 * await of the route, or throws 429 TOO_MANY_STREAMS when the key or the process holds as many as
 * it may. The slot is given back when the response closes (the answer ended, or the client left,
 * even during the route's first reads); a revoked key's request is stopped, and a begun stream
 * ended, at once.
 */
export function holdRequest(held: HeldRequests, req: Request, res: Response): HeldRequest {
  const stopped = new AbortController();
  let revoked = false;
  const forgets: (() => void)[] = [];
  const stop = () => {
    if (stopped.signal.aborted) return;
    stopped.abort();
    for (const forget of forgets.splice(0)) forget();
  };
  const request: HeldRequest = {
    signal: stopped.signal,
    onStop(forget) {
      if (stopped.signal.aborted) forget();
      else forgets.push(forget);
    },
    stopAnswer() {
      if (revoked && !res.headersSent && !res.destroyed) throw unauthorized('Invalid API key.');
      if (res.headersSent && !res.writableEnded) res.end();
    },
  };
  // The client may have left while the key was looked up: no slot, and nothing to do.
  if (res.destroyed || req.socket.destroyed) {
    stop();
    return request;
  }
  const slot = held.take(apiKeyOf(req).id, () => {
    revoked = true;
    stop();
    if (res.headersSent && !res.writableEnded) res.end();
  });
  if (!slot) throw tooManyStreams();
  res.once('close', () => {
    stop();
    slot.release();
  });
  return request;
}
