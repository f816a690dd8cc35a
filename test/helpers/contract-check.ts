import { errorBody, type ErrorCode } from '../../src/contract/errors';
import { RETRY_CODES } from '../../src/contract/openapi-document';
import { ROUTES, type RouteSpec } from '../../src/contract/routes';

const matchers = ROUTES.map((route) => ({
  route,
  // Express matches a path with or without its trailing slash.
  pattern: new RegExp(`^${route.path.replace(/\/$/, '').replace(/\{\w+\}/g, '[^/]+')}/?$`, 'i'),
}));

/** The declared route a request reached, if any (HEAD is answered by GET's route). */
export function routeOf(method: string, url: string): RouteSpec | undefined {
  // As fetch sends it: dot segments resolved.
  const path = new URL(`http://x${url}`).pathname;
  const wanted = method.toLowerCase() === 'head' ? 'get' : method.toLowerCase();
  return matchers.find(({ route, pattern }) => route.method === wanted && pattern.test(path))?.route;
}

/**
 * Throws when an answer is one its route does not declare: a status it does not list, a JSON body
 * its schema does not allow, or an error code the status does not name. Every TestService call
 * is checked, so the whole API suite tests the contract the OpenAPI document publishes.
 */
export function checkAnswer(
  method: string,
  url: string,
  status: number,
  headers: Headers,
  body: unknown,
): void {
  const contentType = headers.get('content-type') ?? '';
  const route = routeOf(method, url);
  const where = `${method} ${url} → ${status}`;
  const json = contentType.includes('application/json') && method.toUpperCase() !== 'HEAD';
  const declared = route?.responses[status];
  if (declared) {
    const missing = (declared.headers ?? []).filter((name) => name !== 'Set-Cookie' && !headers.has(name));
    if (missing.length > 0) throw new Error(`${where}: declared header(s) missing: ${missing.join(', ')}`);
    if (json && declared.schema) {
      const parsed = declared.schema.safeParse(body);
      if (!parsed.success)
        throw new Error(
          `${where}: the body breaks its declared schema: ${parsed.error.message}\n${JSON.stringify(body)}`,
        );
    }
    return;
  }
  const codes: readonly ErrorCode[] | undefined = route ? route.errors[status] : [];
  // Any URL may answer 404 NOT_FOUND: no route, or a file that is not there.
  const allowed = status === 404 ? [...(codes ?? []), 'NOT_FOUND'] : codes;
  if (!allowed) throw new Error(`${where}: status not declared for ${route?.method} ${route?.path}`);
  if (!json) throw new Error(`${where}: an error answer that is not JSON (${contentType})`);
  const parsed = errorBody.safeParse(body);
  if (!parsed.success)
    throw new Error(`${where}: not the error shape: ${parsed.error.message}\n${JSON.stringify(body)}`);
  if (!allowed.includes(parsed.data.code))
    throw new Error(`${where}: code ${parsed.data.code} not declared (${allowed.join(', ')})`);
  if (
    RETRY_CODES.includes(parsed.data.code) &&
    !headers.has('retry-after') &&
    parsed.data.code !== 'NOT_READY'
  )
    throw new Error(`${where}: ${parsed.data.code} without Retry-After`);
}

/**
 * Throws when one Server-Sent Event of a route is not what the document says of its events: an
 * unnamed (`message`) event with a numeric id whose data is the route's declared `events` schema.
 */
export function checkEvent(url: string, block: string, data: unknown): void {
  const route = routeOf('GET', url);
  const schema = route?.responses[200]?.events;
  if (!schema) throw new Error(`GET ${url}: an event stream its route does not declare`);
  if (/^event:/m.test(block))
    throw new Error(`GET ${url}: a named event the document does not declare\n${block}`);
  if (!/^id: \d+$/m.test(block)) throw new Error(`GET ${url}: an event without a numeric id\n${block}`);
  const parsed = schema.safeParse(data);
  if (!parsed.success)
    throw new Error(
      `GET ${url}: an event's data breaks its declared schema: ${parsed.error.message}\n${block}`,
    );
}
