import type { Request, RequestHandler, Response } from 'express';
import { apiKeyOf } from './auth';
import type { BodyBudget } from './body-budget';
import { HttpError, sendError } from './errors';

const MIB = 1024 * 1024;
/** Most bytes of one request body outside a batch. */
export const REQUEST_BODY_LIMIT_BYTES = 2 * MIB;
/** Most bytes of one batch body, whatever OMNISCRAPE_MAX_BATCH allows. */
export const MAX_BATCH_BODY_LIMIT_BYTES = 32 * MIB;
/** Room a batch's body gives each of its requests on average (a URL, a few headers, an options object). */
const BATCH_BYTES_PER_REQUEST = 4 * 1024;

/**
 * A batch of up to `maxBatch` requests: 4 KiB a request, at least the limit of one request and at
 * most 32 MiB (reached from 8,192 requests on, so at the default OMNISCRAPE_MAX_BATCH). JSON.parse
 * of the body is one block of the event loop, whose length grows with the body: a service with
 * smaller batches gets a smaller limit, and so shorter blocks.
 */
export function batchBodyLimitBytes(maxBatch: number): number {
  return Math.min(
    MAX_BATCH_BODY_LIMIT_BYTES,
    Math.max(REQUEST_BODY_LIMIT_BYTES, maxBatch * BATCH_BYTES_PER_REQUEST),
  );
}

const payloadTooLarge = (limit: number) =>
  new HttpError(413, 'PAYLOAD_TOO_LARGE', `The request body is larger than the ${limit}-byte limit.`);

const tooManyRequestBytes = () =>
  new HttpError(
    429,
    'TOO_MANY_REQUEST_BYTES',
    "This API key's request bodies being read at once are at its limit (OMNISCRAPE_REQUEST_BODY_BUDGET_PER_KEY_MB), or the server's are; retry after Retry-After.",
    { 'Retry-After': '1' },
  );

/** Requests whose body is already bounded (a batch's, by the first of two middlewares on its path). */
const bounded = new WeakSet<Request>();

const declaredLength = (header: string | undefined): number | undefined =>
  header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;

/**
 * In front of the JSON parser, after the key is known: a body whose Content-Length is over
 * `limit` is refused (413) before any of it is read; any other reserves its bytes in the budget
 * before it is read: its declared length, or, when its size is known only once read (chunked, or
 * compressed), the whole limit. Over the key's or the process's budget: 429 TOO_MANY_REQUEST_BYTES.
 * The bytes are given back once, when the response ends or its client leaves.
 *
 * The connection stays open after a refusal, so a client still sending reads the answer: Node
 * reads the rest of a refused body and drops it, holding none of it (for at most its
 * requestTimeout, 5 minutes).
 */
export function boundRequestBodies(budget: BodyBudget, limit: number): RequestHandler {
  return (req, res, next) => {
    if (bounded.has(req)) {
      next();
      return;
    }
    bounded.add(req);
    const length = declaredLength(req.get('content-length'));
    const chunked = req.get('transfer-encoding') !== undefined;
    if (!chunked && !length) {
      next();
      return;
    }
    if (length !== undefined && length > limit) throw payloadTooLarge(limit);
    const encoded = (req.get('content-encoding') ?? 'identity').toLowerCase() !== 'identity';
    const release = budget.reserve(apiKeyOf(req).id, chunked || encoded ? limit : length!);
    if (!release) throw tooManyRequestBytes();
    res.once('close', release);
    if (chunked) refuseOnceOver(req, res, limit);
    next();
  };
}

/**
 * Answers 413 as soon as a chunked body's bytes pass `limit`. The parser stops keeping them then
 * too, but answers only once the client has sent its whole body; this answer comes first.
 */
function refuseOnceOver(req: Request, res: Response, limit: number): void {
  let received = 0;
  const count = (chunk: Buffer) => {
    received += chunk.length;
    if (received <= limit) return;
    req.off('data', count);
    if (!res.headersSent) sendError(res, payloadTooLarge(limit));
  };
  req.on('data', count);
  req.once('end', () => req.off('data', count));
}
