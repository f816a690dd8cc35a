// What `omniscrape report` reads: the reporting views only (they are the stable, documented
// interface; a replica or a role granted `omniscrape reporting grant` can read them and nothing else).
import { sql, type Selectable } from 'kysely';
import type { DailyUsageView, HostHealthView, ReportingDb } from './reporting-schema';

export type DailyUsageRow = Selectable<DailyUsageView>;
export type HostHealthRow = Selectable<HostHealthView>;

/**
 * The daily usage of every UTC day from the one `since` falls in through today, by day then key
 * name; of one key when `keyName` is given. A day counts whole: `since` picks days, not hours.
 */
export function readDailyUsage(
  db: ReportingDb,
  { since, keyName }: { since: Date; keyName?: string },
): Promise<DailyUsageRow[]> {
  return db
    .selectFrom('omniscrape_reporting.daily_usage')
    .selectAll()
    .where('day', '>=', sql<string>`(${since}::timestamptz at time zone 'UTC')::date`)
    .$if(keyName !== undefined, (q) => q.where('api_key_name', '=', keyName!))
    .orderBy('day')
    .orderBy('api_key_name')
    .execute();
}

/** Host health over the last 24 hours (the view's window), the busiest hosts first. */
export function readHostHealth(db: ReportingDb): Promise<HostHealthRow[]> {
  return db
    .selectFrom('omniscrape_reporting.host_health')
    .selectAll()
    .orderBy('jobs', 'desc')
    .orderBy('host')
    .execute();
}

/**
 * Whether any job of a key by this name is in the reporting views: in the history, or only in the
 * roll-up of days whose raw rows were deleted. The views hold no key list (the keys table is not
 * for reporting roles), so a key that never ran a job is not known to them either.
 */
export async function keyHasUsage(db: ReportingDb, keyName: string): Promise<boolean> {
  const { known } = await db
    .selectNoFrom((eb) =>
      eb
        .or([
          eb.exists(
            eb
              .selectFrom('omniscrape_reporting.job_history')
              .select(eb.lit(1).as('one'))
              .where('api_key_name', '=', keyName),
          ),
          eb.exists(
            eb
              .selectFrom('omniscrape_reporting.daily_usage')
              .select(eb.lit(1).as('one'))
              .where('api_key_name', '=', keyName),
          ),
        ])
        .as('known'),
    )
    .executeTakeFirstOrThrow();
  return known === true;
}
