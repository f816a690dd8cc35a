import { z } from 'zod';
import { invalidRequest } from './errors';

export { PAGE_DEFAULT_LIMIT, PAGE_MAX_LIMIT, pageLimit } from '../contract/requests';

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
