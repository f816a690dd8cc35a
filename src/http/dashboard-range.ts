import { dashboardRangeQuery, type DASHBOARD_RANGE_NAMES } from '../contract/requests';
import { invalidRequest } from './errors';
import { parseQuery } from './query';

/** The ranges the page offers by name, back from now. */
export type RangeName = (typeof DASHBOARD_RANGE_NAMES)[number];
export const NAMED_RANGES = {
  '1h': 3_600,
  '6h': 6 * 3_600,
  '24h': 24 * 3_600,
  '7d': 7 * 86_400,
} as const satisfies Record<RangeName, number>;
export const DEFAULT_RANGE: RangeName = '1h';

/** The widest `from`–`to` the page answers: its queries read every history row of the range. */
export const MAX_RANGE_SECONDS = NAMED_RANGES['7d'];

/** Chart buckets, finest first: a range gets the finest one that keeps the chart within MAX_BUCKETS bars. */
const BUCKET_SECONDS = [60, 300, 900, 3_600] as const;
const MAX_BUCKETS = 180;

/** How often the page re-reads its figures: coarser for wider ranges, whose queries read more rows. */
const REFRESH_SECONDS: Record<(typeof BUCKET_SECONDS)[number], number> = {
  60: 5,
  300: 15,
  900: 30,
  3_600: 60,
};

export interface DashboardRange {
  from: Date;
  to: Date;
  /** The chart's bucket width: whole minutes, aligned to the UTC epoch. */
  bucketSeconds: number;
  refreshSeconds: number;
  /** The named range asked for, if any (the page's range selector shows it). */
  name: RangeName | undefined;
}

/** The time range of a dashboard request (`?range=1h|6h|24h|7d`, or `?from=…&to=…` in ISO 8601); 400 when malformed or too wide. */
export function parseDashboardRange(query: Record<string, unknown>, now = new Date()): DashboardRange {
  const q = parseQuery(dashboardRangeQuery, query);
  if (q.from && q.to) {
    const seconds = (q.to.getTime() - q.from.getTime()) / 1000;
    if (seconds <= 0) throw invalidRequest('to: must be later than from');
    if (seconds > MAX_RANGE_SECONDS)
      throw invalidRequest(`from, to: the range may span at most ${MAX_RANGE_SECONDS / 86_400} days`);
    return withBuckets(q.from, q.to, undefined);
  }
  const name = q.range ?? DEFAULT_RANGE;
  return withBuckets(new Date(now.getTime() - NAMED_RANGES[name] * 1000), now, name);
}

function withBuckets(from: Date, to: Date, name: RangeName | undefined): DashboardRange {
  const seconds = (to.getTime() - from.getTime()) / 1000;
  const bucketSeconds =
    BUCKET_SECONDS.find((bucket) => Math.ceil(seconds / bucket) <= MAX_BUCKETS) ?? BUCKET_SECONDS[3];
  return { from, to, bucketSeconds, refreshSeconds: REFRESH_SECONDS[bucketSeconds], name };
}
