import type { JobForOwner, OwnedJob } from '../db/statements/find-job-for-key';
import { isTerminal } from '../contract/errors';
import type { JobWatchers } from './job-watchers';

/** The longest `?wait=` a request may ask for, in seconds. */
export { MAX_WAIT_SECONDS } from '../contract/requests';

/** What a wait found: the job as first read (undefined: no such job), and the job as it ended, if it did. */
export interface WaitOutcome {
  read: JobForOwner | undefined;
  ended?: OwnedJob;
}

/**
 * Reads a job with `read` once a watch on it has begun, so a change committed after the read is
 * always followed by a notice the watch hears. Answers at once if the read found no job or a
 * terminal one; otherwise waits until a notice's re-read finds the job terminal (`ended`), or `ms`
 * pass, `signal` aborts (the client left) or the process stops (no `ended`). A wait costs one
 * timer and its read: the re-reads are shared by every job a notice names, and notices of changes
 * other than an end (`changed`) do not re-read the job for it.
 */
export async function readAndWaitForEnd(
  watchers: JobWatchers,
  jobId: string,
  ms: number,
  signal: AbortSignal,
  read: () => Promise<JobForOwner | undefined>,
): Promise<WaitOutcome> {
  let ended: OwnedJob | undefined;
  let onEnd = () => {};
  const unwatch = watchers.watch(
    jobId,
    (job) => {
      if (!isTerminal(job.status) || ended) return;
      ended = job;
      onEnd();
    },
    { endOnly: true },
  );
  try {
    const job = await read();
    if (!job || isTerminal(job.status) || ended) return { read: job, ended };
    await new Promise<void>((resolve) => {
      let forgetStop: () => unknown = () => undefined;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', finish);
        forgetStop();
        resolve();
      };
      onEnd = finish;
      const timer = setTimeout(finish, ms);
      signal.addEventListener('abort', finish, { once: true });
      forgetStop = watchers.onStop(finish);
      if (signal.aborted) finish();
    });
    return { read: job, ended };
  } finally {
    unwatch();
  }
}
