import type { OwnedJob } from '../store/statements/find-job-for-key';
import { isTerminal, type JobWatchers } from './job-watchers';

/** The longest `?wait=` a request may ask for, in seconds. */
export const MAX_WAIT_SECONDS = 60;

/**
 * Waits until the job is re-read terminal after a status notice, and resolves with it; resolves
 * undefined when `ms` pass, `signal` aborts (the client left) or the process stops, whichever
 * comes first. One timer per wait; the job is re-read once right after the watch begins, since it
 * may have ended between the caller's read and the watch (its notice then came too early).
 */
export function waitForTerminal(
  watchers: JobWatchers,
  jobId: string,
  ms: number,
  signal: AbortSignal,
): Promise<OwnedJob | undefined> {
  return new Promise((resolve) => {
    let ended = false;
    let forgetStop: () => unknown = () => undefined;
    const end = (job?: OwnedJob) => {
      if (ended) return;
      ended = true;
      unwatch();
      forgetStop();
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(job);
    };
    const onAbort = () => end();
    const unwatch = watchers.watch(jobId, (job) => {
      if (isTerminal(job.status)) end(job);
    });
    const timer = setTimeout(onAbort, ms);
    signal.addEventListener('abort', onAbort, { once: true });
    forgetStop = watchers.onStop(onAbort);
    if (signal.aborted) return end();
    void watchers.reread([jobId]);
  });
}
