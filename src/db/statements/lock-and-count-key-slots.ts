import { namedStatement, runStatement } from '../prepared-statements';
import type { Db } from '../schema';

/** A key's concurrency limit (null: the service default) and its scrapes being processed now. */
export interface KeyConcurrency {
  limit: number | null;
  processing: number;
}

/** How long a running scrape's proof of life stays good for its key's concurrency slot. */
export interface SlotLeases {
  /** An async job's worker heartbeat. */
  asyncSeconds: number;
  /** A sync scrape's lease, renewed by its API process (SyncScrapeLeases). */
  syncSeconds: number;
}

/**
 * One round trip: `omniscrape.key_slots` (migrations 0004 and 0005) takes the keys' locks in one
 * order and counts after them, each count in a snapshot taken after the locks; what holds a slot
 * is defined there.
 */
const LOCK_AND_COUNT_KEY_SLOTS = namedStatement(
  'omniscrape_lock_and_count_key_slots',
  `select id, concurrency_limit, processing
     from omniscrape.key_slots($1::uuid[], $2::uuid[], $3, $4)`,
);

/**
 * Locks the keys' limit checks for the rest of the transaction (across all processes; other keys
 * are not affected) and counts each key's scrapes being processed now, sync and async together,
 * not counting the jobs `exceptJobIds` (a claim's own batch, some of which may still say
 * `processing` from a lost worker) nor scrapes whose lease has lapsed (their process is gone).
 */
export async function lockAndCountKeySlots(
  db: Db,
  apiKeyIds: readonly string[],
  exceptJobIds: readonly string[],
  leases: SlotLeases,
): Promise<Map<string, KeyConcurrency>> {
  const keys = [...new Set(apiKeyIds)];
  if (keys.length === 0) return new Map();
  const rows = await runStatement<{ id: string; concurrency_limit: number | null; processing: string }>(
    db,
    LOCK_AND_COUNT_KEY_SLOTS,
    [keys, exceptJobIds, leases.asyncSeconds, leases.syncSeconds],
  );
  return new Map(rows.map((r) => [r.id, { limit: r.concurrency_limit, processing: Number(r.processing) }]));
}
