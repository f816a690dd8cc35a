import type { Request } from 'express';
import { jobPollQuery } from '../contract/requests';
import type { ServiceContext } from '../context';
import { MAX_WAIT_SECONDS, readAndWaitForEnd } from '../jobs/job-wait';
import { isTerminal } from '../contract/errors';
import type { JobForOwner } from '../db/statements/find-job-for-key';
import { invalidRequest } from './errors';
import type { HeldRequest } from './held-request';

/** `?wait=<seconds>` in milliseconds; undefined without it; a 400 naming `wait` when it is not 0 < wait ≤ 60. */
export function waitParameter(query: Request['query']): number | undefined {
  if (query.wait === undefined) return undefined;
  const parsed = jobPollQuery.safeParse(query);
  const seconds = parsed.success ? Number(parsed.data.wait) : NaN;
  if (!(seconds > 0 && seconds <= MAX_WAIT_SECONDS))
    throw invalidRequest(`wait: must be a number of seconds greater than 0 and at most ${MAX_WAIT_SECONDS}.`);
  return seconds * 1000;
}

/**
 * The key's job to answer a `?wait=` poll with (undefined: no such job of this key): at once if it
 * is terminal; otherwise once a status notice finds it terminal, or else as it is when the wait
 * ends (its time is up, the process stops, or the held request stops: the client left, or the key
 * was revoked, which the caller checks). Every answer is a read from Postgres made after the change
 * it shows committed.
 */
export async function ownedJobAfterWait(
  ctx: Pick<ServiceContext, 'jobWatchers'>,
  jobId: string,
  apiKeyId: string,
  waitMs: number,
  held: HeldRequest,
  /** Reads the key's job from Postgres now (undefined: no such job of this key). */
  readOwnedJob: () => Promise<JobForOwner | undefined>,
): Promise<JobForOwner | undefined> {
  const { read, ended } = await readAndWaitForEnd(ctx.jobWatchers, jobId, waitMs, held.signal, readOwnedJob);
  if (!read || isTerminal(read.status) || held.signal.aborted) return read;
  if (ended?.api_key_id === apiKeyId) return ended;
  return (await readOwnedJob()) ?? read;
}
