import { hash } from 'node:crypto';

/** The ETag of an empty body, as the `etag` package gives it. */
const EMPTY_BODY_ETAG = 'W/"0-2jmj7l5rSw0yVb/vlWAYkK/YBwk"';

/**
 * Express's default weak ETag (`W/"<length in hex>-<27 characters of the body's SHA-1 in
 * base64>"`, as the `etag` package makes it), from a one-shot hash: every answer with a body gets
 * one, and the package's hash object per answer cost more than the hashing.
 */
export function weakEtag(body: Buffer | string, encoding?: BufferEncoding): string {
  const bytes = typeof body === 'string' ? Buffer.from(body, encoding) : body;
  if (bytes.length === 0) return EMPTY_BODY_ETAG;
  return `W/"${bytes.length.toString(16)}-${hash('sha1', bytes, 'base64').slice(0, 27)}"`;
}
