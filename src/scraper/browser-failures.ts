import { errors as playwrightErrors } from 'playwright-core';
import { ScrapeFailure } from '../domain-errors';
import { NO_USABLE_ADDRESS_MESSAGE } from './scrape-failures';

/** Chromium's network errors (`net::ERR_…` in a navigation's message) by the failure they are. */
const UNREACHABLE =
  /net::ERR_(CONNECTION_(REFUSED|RESET|CLOSED|FAILED|ABORTED|TIMED_OUT)|ADDRESS_UNREACHABLE|INTERNET_DISCONNECTED|EMPTY_RESPONSE|NETWORK_CHANGED)/;
/**
 * Every way the SOCKS proxy (browser-proxy.ts) can refuse a tunnel, and a name Chromium could not
 * resolve: told in the words the HTTP engine uses for a name with no usable address, so a render
 * cannot be used to learn which internal names exist either.
 */
const NO_USABLE_ADDRESS =
  /net::ERR_(NAME_NOT_RESOLVED|NAME_RESOLUTION_FAILED|SOCKS_CONNECTION_FAILED|SOCKS_CONNECTION_HOST_UNREACHABLE|PROXY_CONNECTION_FAILED|TUNNEL_CONNECTION_FAILED)/;
const TLS = /net::ERR_(CERT_|SSL_|BAD_SSL_)/;
const TOO_MANY_REDIRECTS = /net::ERR_TOO_MANY_REDIRECTS/;
const PROTOCOL =
  /net::ERR_(INVALID_RESPONSE|INVALID_HTTP_RESPONSE|CONTENT_DECODING_FAILED|RESPONSE_HEADERS_TOO_BIG|UNSAFE_REDIRECT|INVALID_REDIRECT|HTTP2_PROTOCOL_ERROR|UNKNOWN_URL_SCHEME|BLOCKED_BY_CLIENT|BLOCKED_BY_RESPONSE)/;

/** Chromium's process went away under a render: the render may be tried again on a new one. */
export class BrowserLost extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BrowserLost';
  }
}

/** A render's timeout: the whole of it (slot, load, `wait_for`, screenshot) is the request's `timeout`. */
export function renderTimedOut(timeoutSeconds: number, waitingFor?: string): ScrapeFailure {
  return new ScrapeFailure(
    'TARGET_TIMEOUT',
    waitingFor === undefined
      ? `The page did not finish loading within ${timeoutSeconds} s.`
      : `wait_for: ${JSON.stringify(waitingFor)} did not appear within ${timeoutSeconds} s.`,
  );
}

/** Maps what a render threw to one of the documented failure codes (BrowserLost passes through). */
export function toRenderFailure(err: unknown, timeoutSeconds: number): ScrapeFailure | BrowserLost {
  if (err instanceof ScrapeFailure || err instanceof BrowserLost) return err;
  if (err instanceof playwrightErrors.TimeoutError) return renderTimedOut(timeoutSeconds);
  const message = err instanceof Error ? err.message : String(err);
  const firstLine = message.split('\n')[0]!;
  if (NO_USABLE_ADDRESS.test(message))
    return new ScrapeFailure('TARGET_UNREACHABLE', NO_USABLE_ADDRESS_MESSAGE);
  if (UNREACHABLE.test(message))
    return new ScrapeFailure('TARGET_UNREACHABLE', `The target could not be reached: ${firstLine}`);
  if (TLS.test(message))
    return new ScrapeFailure('TARGET_TLS_ERROR', `TLS handshake with the target failed: ${firstLine}`);
  if (TOO_MANY_REDIRECTS.test(message))
    return new ScrapeFailure('TOO_MANY_REDIRECTS', 'The page redirected too many times.');
  if (/Download is starting/.test(message))
    return new ScrapeFailure(
      'TARGET_PROTOCOL_ERROR',
      'The page is a download; the browser refuses downloads.',
    );
  if (PROTOCOL.test(message))
    return new ScrapeFailure('TARGET_PROTOCOL_ERROR', `The browser could not load the page: ${firstLine}`);
  if (/Page crashed|Target crashed/i.test(message))
    return new ScrapeFailure(
      'TARGET_PROTOCOL_ERROR',
      "The page crashed the browser's renderer (it may have used more memory than a page is allowed).",
    );
  return new ScrapeFailure('TARGET_PROTOCOL_ERROR', `The browser could not load the page: ${firstLine}`);
}
