import { z } from 'zod';
import { HTTP_METHODS, MAX_TIMEOUT_SECONDS, type ScrapeRequest } from '../scraper/scrape-request';
import { invalidRequest } from './errors';

export const MAX_URL_LENGTH = 8192;
export const MAX_FORWARDED_HEADERS = 100;
export const MAX_HEADER_VALUE_LENGTH = 8192;
export const MAX_REQUEST_BODY_FIELD_BYTES = 1024 * 1024;
export const DEFAULT_TIMEOUT_SECONDS = 30;

// Fields some OmniScrape plans offer that this gateway's HTTP engine does not; named in the 400.
const UNSUPPORTED_FEATURES: Record<string, string> = {
  js_rendering:
    'JavaScript rendering is not supported: this gateway only has the HTTP engine (mode "auto" or "http")',
  screenshot: 'screenshots are not supported: this gateway only has the HTTP engine',
  wait_for: 'wait_for needs a browser engine, which this gateway does not have',
  proxy: 'proxies are not supported by this gateway',
};

const httpUrl = z
  .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
  .min(1, 'is required')
  .max(MAX_URL_LENGTH, `must be at most ${MAX_URL_LENGTH} characters`)
  .refine((value) => !value.includes('\0'), 'must not contain NUL characters')
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
    } catch {
      return false; // an unparsable URL is the client's mistake, answered by this refinement's message
    }
  }, 'must be an absolute http:// or https:// URL');

const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const scrapeBody = z
  .strictObject({
    url: httpUrl,
    method: z
      .string({ error: 'must be a string' })
      .transform((m) => m.toUpperCase())
      .pipe(z.enum(HTTP_METHODS, { error: `must be one of ${HTTP_METHODS.join(', ')}` }))
      .default('GET'),
    headers: z
      .record(
        z.string().regex(headerName, 'header names must be HTTP tokens'),
        z
          .string({ error: 'header values must be strings' })
          .max(MAX_HEADER_VALUE_LENGTH)
          .refine((v) => !/[\r\n\0]/.test(v), 'header values must not contain CR, LF or NUL'),
        { error: 'must be an object of strings' },
      )
      .refine(
        (h) => Object.keys(h).length <= MAX_FORWARDED_HEADERS,
        `must have at most ${MAX_FORWARDED_HEADERS} headers`,
      )
      .default({}),
    body: z
      .string({ error: 'must be a string' })
      .refine((b) => Buffer.byteLength(b) <= MAX_REQUEST_BODY_FIELD_BYTES, 'must be at most 1 MiB')
      .refine(
        (b) => !b.includes('\0'),
        'must not contain NUL characters (Postgres text and jsonb cannot store them)',
      )
      .optional(),
    timeout: z
      .number({ error: 'must be a number of seconds' })
      .gt(0, 'must be greater than 0')
      .max(MAX_TIMEOUT_SECONDS, `must be at most ${MAX_TIMEOUT_SECONDS} seconds`)
      .default(DEFAULT_TIMEOUT_SECONDS),
    follow_redirects: z.boolean({ error: 'must be true or false' }).default(true),
    format: z
      .enum(['raw', 'text', 'markdown'], { error: 'must be one of raw, text, markdown' })
      .default('raw'),
    mode: z
      .enum(['auto', 'http'], { error: 'must be "auto" or "http" (only the HTTP engine is available)' })
      .default('auto'),
  })
  .refine((b) => b.body === undefined || (b.method !== 'GET' && b.method !== 'HEAD'), {
    message: 'is not allowed with GET or HEAD',
    path: ['body'],
  });

/** Validates a scrape body; throws a 400 INVALID_REQUEST whose message names the field. */
export function parseScrapeRequest(input: unknown): ScrapeRequest {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidRequest('The request body must be a JSON object (Content-Type: application/json).');
  }
  const unsupported = Object.keys(input).filter((key) => key in UNSUPPORTED_FEATURES);
  if (unsupported.length > 0) {
    throw invalidRequest(unsupported.map((key) => `${key}: ${UNSUPPORTED_FEATURES[key]}`).join('; '));
  }
  const parsed = scrapeBody.safeParse(input);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') return `unknown field(s): ${issue.keys.join(', ')}`;
      const field = issue.path.length > 0 ? issue.path.join('.') : 'body';
      return `${field}: ${issue.message}`;
    });
    throw invalidRequest(messages.join('; '));
  }
  return parsed.data;
}

export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** The `Idempotency-Key` header: absent, or 1–255 visible ASCII characters (a UUID fits). */
export function parseIdempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!/^[\x21-\x7e]{1,255}$/.test(header)) {
    throw invalidRequest(
      `Idempotency-Key: must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters (a UUID is a good key)`,
    );
  }
  return header;
}
