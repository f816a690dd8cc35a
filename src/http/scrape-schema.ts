import { rendersInBrowser, scrapeRequest } from '../contract/requests';
import type { ScrapeRequest } from '../scraper/scrape-request';
import { invalidRequest } from './errors';

export {
  DEFAULT_TIMEOUT_SECONDS,
  MAX_FORWARDED_HEADERS,
  MAX_HEADER_VALUE_LENGTH,
  MAX_REQUEST_BODY_FIELD_BYTES,
  MAX_URL_LENGTH,
} from '../contract/requests';

// Fields some OmniScrape plans offer that this gateway's HTTP engine does not; named in the 400.
const UNSUPPORTED_FEATURES: Record<string, string> = {
  proxy: 'proxies are not supported by this gateway',
};

/**
 * Validates a scrape body; throws a 400 INVALID_REQUEST whose message names the field. With a
 * `noRendering` reason (the gateway has no browser engine: PageScraper.noRendering), a request for
 * rendering is refused too, with that reason.
 */
export function parseScrapeRequest(input: unknown, noRendering?: string): ScrapeRequest {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidRequest('The request body must be a JSON object (Content-Type: application/json).');
  }
  const unsupported = Object.keys(input).filter((key) => key in UNSUPPORTED_FEATURES);
  if (unsupported.length > 0) {
    throw invalidRequest(unsupported.map((key) => `${key}: ${UNSUPPORTED_FEATURES[key]}`).join('; '));
  }
  const parsed = scrapeRequest.safeParse(input);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') return `unknown field(s): ${issue.keys.join(', ')}`;
      const field = issue.path.length > 0 ? issue.path.join('.') : 'body';
      return `${field}: ${issue.message}`;
    });
    throw invalidRequest(messages.join('; '));
  }
  if (noRendering !== undefined && rendersInBrowser(parsed.data)) {
    const field = parsed.data.js_rendering ? 'js_rendering' : 'mode';
    throw invalidRequest(`${field}: this gateway renders no pages: ${noRendering}`);
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
