import { z } from 'zod';
import { invalidRequest } from './errors';

/** Items a page of a list answers unless `limit` says otherwise, and the most it may ask for. */
export const PAGE_DEFAULT_LIMIT = 100;
export const PAGE_MAX_LIMIT = 1000;

/** `limit` of a paged list: a whole number from 1 to PAGE_MAX_LIMIT. */
export const pageLimit = z
  .string()
  .regex(/^\d{1,7}$/, `must be a whole number from 1 to ${PAGE_MAX_LIMIT}`)
  .transform(Number)
  .pipe(z.number().min(1, 'must be at least 1').max(PAGE_MAX_LIMIT, `must be at most ${PAGE_MAX_LIMIT}`))
  .default(PAGE_DEFAULT_LIMIT);

/**
 * Validates a query string with `schema` (each parameter at most once); throws a 400
 * INVALID_REQUEST whose message names each bad parameter.
 */
export function parseQuery<S extends z.ZodType>(schema: S, query: Record<string, unknown>): z.output<S> {
  const repeated = Object.entries(query).filter(([, v]) => typeof v !== 'string');
  if (repeated.length > 0)
    throw invalidRequest(repeated.map(([name]) => `${name}: must be given once`).join('; '));
  const parsed = schema.safeParse(query);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') return `unknown parameter(s): ${issue.keys.join(', ')}`;
      const name = issue.path[0];
      return `${typeof name === 'string' ? name : 'query'}: ${issue.message}`;
    });
    throw invalidRequest([...new Set(messages)].join('; '));
  }
  return parsed.data;
}
