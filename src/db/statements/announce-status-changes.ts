import { namedStatement, runStatement } from '../prepared-statements';
import type { Db } from '../schema';

/** Channel on which jobs whose status changed are announced, so waiting requests and streams re-read them. */
export const JOB_STATUS_CHANNEL = 'omniscrape_job_status';

/**
 * What a notice announces, its payload's first item: `ended` (the jobs reached a terminal status)
 * or `changed` (another status: processing, or queued again). A `?wait=` needs only the first, so
 * the listeners re-read for it only the jobs an event stream watches.
 */
export type StatusChangeKind = 'ended' | 'changed';

export const STATUS_CHANGE_KINDS: readonly StatusChangeKind[] = ['ended', 'changed'];

/** Postgres refuses a NOTIFY payload of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7_999;

/** One NOTIFY per payload, all in one round trip. */
const ANNOUNCE_STATUS_CHANGES = namedStatement(
  'omniscrape_announce_status_changes',
  `select pg_notify($1, payload) from unnest($2::text[]) as payload`,
);

/**
 * Announces that these jobs changed status: each payload is the kind of change, then job ids, all
 * comma-separated, split into as many notices as Postgres's payload limit needs. Sent outside any
 * writing transaction (a NOTIFY inside one would serialise commits cluster-wide), after the changes
 * it announces have committed, so a listener that re-reads a job sees the new status.
 */
export async function announceStatusChanges(
  db: Db,
  changes: Readonly<Record<StatusChangeKind, readonly string[]>>,
): Promise<void> {
  const payloads = STATUS_CHANGE_KINDS.flatMap((kind) => statusPayloads(kind, changes[kind]));
  if (payloads.length > 0) await runStatement(db, ANNOUNCE_STATUS_CHANGES, [JOB_STATUS_CHANNEL, payloads]);
}

/** A kind of change and job ids as notice payloads, each under Postgres's limit. */
export function statusPayloads(kind: StatusChangeKind, jobIds: readonly string[]): string[] {
  const payloads: string[] = [];
  let current = '';
  for (const id of jobIds) {
    if (current && current.length + 1 + id.length > MAX_PAYLOAD_BYTES) {
      payloads.push(current);
      current = '';
    }
    current = `${current || kind},${id}`;
  }
  if (current) payloads.push(current);
  return payloads;
}
