import { z } from 'zod';
import { decodeCursor, JOB_LIST_DEFAULT_LIMIT, JOB_LIST_MAX_LIMIT } from '../jobs/list-jobs';
import type { JobListFilter } from '../store/job-list';
import { JOB_STATUSES } from '../store/schema';
import { invalidRequest } from './errors';

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
    limit: z
      .string()
      .regex(/^\d{1,7}$/, `must be a whole number from 1 to ${JOB_LIST_MAX_LIMIT}`)
      .transform(Number)
      .pipe(
        z
          .number()
          .min(1, 'must be at least 1')
          .max(JOB_LIST_MAX_LIMIT, `must be at most ${JOB_LIST_MAX_LIMIT}`),
      )
      .default(JOB_LIST_DEFAULT_LIMIT),
  })
  .strict();

/** Validates GET /v1/jobs's query; throws a 400 INVALID_REQUEST whose message names the parameter. */
export function parseJobListQuery(query: Record<string, unknown>, apiKeyId: string): JobListFilter {
  const repeated = Object.entries(query).filter(([, v]) => typeof v !== 'string');
  if (repeated.length > 0)
    throw invalidRequest(repeated.map(([name]) => `${name}: must be given once`).join('; '));
  const parsed = jobListQuery.safeParse(query);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') return `unknown parameter(s): ${issue.keys.join(', ')}`;
      const name = issue.path[0];
      return `${typeof name === 'string' ? name : 'query'}: ${issue.message}`;
    });
    throw invalidRequest([...new Set(messages)].join('; '));
  }
  const { status, since, until, cursor, limit } = parsed.data;
  return {
    apiKeyId,
    limit,
    ...(status ? { statuses: [...new Set(status)] } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
    ...(cursor ? { after: cursor } : {}),
  };
}
