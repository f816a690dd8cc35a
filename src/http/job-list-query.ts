import { z } from 'zod';
import { decodeCursor } from '../jobs/list-jobs';
import type { JobListFilter } from '../store/job-list';
import { JOB_STATUSES } from '../store/schema';
import { pageLimit, parseQuery } from './query';

/** ISO-8601 with a date and, if a time is given, its offset (Z or ±hh:mm): never the server's zone. */
const timestamp = z
  .string()
  .regex(
    /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/,
    'must be an ISO-8601 timestamp, e.g. 2026-11-30T08:00:00Z',
  )
  .transform((text, ctx) => {
    const date = new Date(text);
    if (Number.isNaN(date.getTime())) {
      ctx.addIssue({ code: 'custom', message: 'is not a valid date' });
      return z.NEVER;
    }
    return date;
  });

/** The query of GET /v1/jobs; each parameter at most once, unknown ones refused. */
const jobListQuery = z
  .object({
    status: z
      .string()
      .transform((text) => text.split(','))
      .pipe(
        z.array(
          z.enum(JOB_STATUSES, {
            message: `must be one or more of ${JOB_STATUSES.join(', ')}, comma-separated`,
          }),
        ),
      )
      .optional(),
    since: timestamp.optional(),
    until: timestamp.optional(),
    cursor: z
      .string()
      .transform((text, ctx) => {
        const position = decodeCursor(text);
        if (!position) {
          ctx.addIssue({ code: 'custom', message: 'is not a cursor this API answered (next_cursor)' });
          return z.NEVER;
        }
        return position;
      })
      .optional(),
    limit: pageLimit,
  })
  .strict();

/** Validates GET /v1/jobs's query; throws a 400 INVALID_REQUEST whose message names the parameter. */
export function parseJobListQuery(query: Record<string, unknown>, apiKeyId: string): JobListFilter {
  const { status, since, until, cursor, limit } = parseQuery(jobListQuery, query);
  return {
    apiKeyId,
    limit,
    ...(status ? { statuses: [...new Set(status)] } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
    ...(cursor ? { after: cursor } : {}),
  };
}
