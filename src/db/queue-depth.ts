import { sql } from 'kysely';
import { transactionWithSettings } from './transactions';
import type { Db } from './schema';

/** Unfinished jobs of one status and key class. */
export interface QueueDepthRow {
  status: 'queued' | 'processing';
  /** The key has a concurrency limit of its own (`keys limits --concurrency`), not the default. */
  own_limit: boolean;
  jobs: number;
}

/**
 * The history's queued and processing jobs, counted by whether their key has a concurrency limit of
 * its own: a class of keys, never a key. Each status is named as a literal, so each count is
 * served by its partial index (migration 0002: the key's id only, an index-only scan) joined to the
 * few keys. `statementTimeoutMs` bounds it: a metrics scrape must not hold a connection for long
 * on a huge backlog or a struggling server.
 */
export async function countQueueDepth(db: Db, statementTimeoutMs: number): Promise<QueueDepthRow[]> {
  return transactionWithSettings(
    db,
    { statement_timeout: String(Math.round(statementTimeoutMs)), jit: 'off' },
    async (trx) => {
      const { rows } = await sql<QueueDepthRow>`
        select 'queued' as status, k.concurrency_limit is not null as own_limit, count(*)::int as jobs
          from omniscrape.scrape_jobs j join omniscrape.api_keys k on k.id = j.api_key_id
         where j.status = 'queued'
         group by 2
        union all
        select 'processing', k.concurrency_limit is not null, count(*)::int
          from omniscrape.scrape_jobs j join omniscrape.api_keys k on k.id = j.api_key_id
         where j.status = 'processing'
         group by 2`.execute(trx);
      return rows;
    },
  );
}
