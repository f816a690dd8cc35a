import { namedStatement, runStatement } from '../prepared-statements';
import type { Db } from '../schema';

/** Channel on which a new queued job is announced, so idle workers claim it at once. */
export const JOBS_QUEUED_CHANNEL = 'omniscrape_jobs_queued';

const ANNOUNCE_QUEUED_JOBS = namedStatement('omniscrape_announce_queued_jobs', `select pg_notify($1, $2)`);

/**
 * Tells idle workers that jobs were queued; the notice carries the sending process's id. Sent
 * outside any writing transaction (a NOTIFY inside one would serialise commits cluster-wide),
 * after the submissions it announces have committed.
 */
export async function announceQueuedJobs(db: Db, fromProcess: string): Promise<void> {
  await runStatement(db, ANNOUNCE_QUEUED_JOBS, [JOBS_QUEUED_CHANNEL, fromProcess]);
}
