import type { RequestHandler } from 'express';
import { apiKeyOf } from './auth';
import type { BodyBudget } from './body-budget';
import { HttpError } from './errors';

const MIB = 1024 * 1024;
/** Most bytes of one request body outside a batch. */
export const REQUEST_BODY_LIMIT_BYTES = 2 * MIB;
/** Most bytes of one batch body, whatever OMNISCRAPE_MAX_BATCH allows. */
export const MAX_BATCH_BODY_LIMIT_BYTES = 32 * MIB;

/** A batch of `maxBatch` requests carries its own, larger, limit. */
export function batchBodyLimitBytes(_maxBatch: number): number {
  return MAX_BATCH_BODY_LIMIT_BYTES;
}

/** The body is larger than may be read: refused before (or while) it is read. */
export const payloadTooLarge = (limit: number) =>
  new HttpError(413, 'PAYLOAD_TOO_LARGE', `The request body is larger than the ${limit}-byte limit.`, {
    Connection: 'close',
  });

const tooManyRequestBytes = () =>
  new HttpError(
    429,
    'TOO_MANY_REQUEST_BYTES',
    "This API key's request bodies being read at once are at its limit (OMNISCRAPE_REQUEST_BODY_BUDGET_PER_KEY_MB), or the server's are; retry after Retry-After.",
    { 'Retry-After': '1', Connection: 'close' },
  );

/** Requests whose body is already bounded (a batch's, by the first of two middlewares on its path). */
const bounded = new WeakSet<object>();

const declaredLength = (header: string | undefined): number | undefined =>
  header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;

/**
 * In front of the JSON parser, after the key is known: a body whose Content-Length is over
 * `limit` is refused (413) before any of it is read; any other reserves its bytes in the budget
 * before it is read — its declared length, or, when chunked or compressed (its size known only
 * once read), the whole limit, which the parser then enforces while reading. Over the key's or the
 * process's budget: 429 TOO_MANY_REQUEST_BYTES. The bytes are given back when the response ends or
 * its client leaves. Either refusal closes the connection, so an unread body is not sent on.
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
    next();
  };
}
