import { deleteExpiredHistory, rollUpDailyUsage } from '../src/maintenance/history-retention';
import { openStore } from '../src/db/pool';

export interface RetentionRun {
  history_days: number;
  deleted_jobs: number;
  batches: number;
  seconds: number;
  jobs_per_s: number;
  longest_batch_with_pause_ms: number;
  before: HistorySize;
  after: HistorySize;
  daily_usage_rows: number;
  daily_usage_unchanged: boolean;
}

interface HistorySize {
  rows: number;
  table: string;
  indexes: string;
  dead_rows: number;
}

/**
 * Runs the scheduled cleanup's retention once over the seeded history with `historyDays` (batches of
 * 1,000, as the service's default): how many jobs went, how fast, the longest batch with its pause,
 * the table's size before and after, and whether daily_usage of the deleted days stayed the same.
 */
export async function measureRetention(url: string, historyDays: number): Promise<RetentionRun> {
  const store = openStore(url, { max: 2 });
  const query = async <T>(text: string) => (await store.pool.query(text)).rows as T[];
  const size = async (): Promise<HistorySize> => {
    const [row] = await query<{ rows: string; table: string; indexes: string; dead_rows: string }>(
      `select (select count(*) from omniscrape.scrape_jobs) as rows,
              pg_size_pretty(pg_table_size('omniscrape.scrape_jobs')) as table,
              pg_size_pretty(pg_indexes_size('omniscrape.scrape_jobs')) as indexes,
              (select n_dead_tup from pg_stat_user_tables where relid = 'omniscrape.scrape_jobs'::regclass) as dead_rows`,
    );
    return {
      rows: Number(row!.rows),
      table: row!.table,
      indexes: row!.indexes,
      dead_rows: Number(row!.dead_rows),
    };
  };
  const usage = `select * from omniscrape_reporting.daily_usage
                  where day < (now() at time zone 'utc')::date - ${historyDays} order by day, api_key_name`;
  try {
    await rollUpDailyUsage(store.db);
    const before = await size();
    const usageBefore = await query<unknown>(usage);
    const began = performance.now();
    let last = began;
    let longest = 0;
    let batches = 0;
    const deleted = await deleteExpiredHistory(store.db, {
      batchSize: 1000,
      historyDays,
      onBatch: () => {
        const now = performance.now();
        longest = Math.max(longest, now - last);
        last = now;
        batches++;
      },
    });
    const seconds = (performance.now() - began) / 1000;
    const usageAfter = await query<unknown>(usage);
    return {
      history_days: historyDays,
      deleted_jobs: deleted,
      batches,
      seconds: Math.round(seconds * 10) / 10,
      jobs_per_s: Math.round(deleted / seconds),
      longest_batch_with_pause_ms: Math.round(longest),
      before,
      after: await size(),
      daily_usage_rows: usageBefore.length,
      daily_usage_unchanged: JSON.stringify(usageBefore) === JSON.stringify(usageAfter),
    };
  } finally {
    await store.close();
  }
}
