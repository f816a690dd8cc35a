import { z } from 'zod';
import { jobListQuery as jobListQueryContract } from '../contract/requests';
import { decodeCursor } from '../jobs/list-jobs';
import type { JobListFilter } from '../db/job-list';
import { parseQuery } from './query';

/** The contract's query, its cursor decoded (a cursor is opaque to clients). */
const jobListQuery = jobListQueryContract.extend({
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
});

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
